################################################################################
# Access
################################################################################

output "url" {
  description = "URL of the web UI and the HTTP API (plain HTTP: keep allowed_cidrs narrow or put TLS in front). Ready a few minutes to an hour after apply, once the models are fetched."
  value       = "http://${alicloud_eip_address.this.ip_address}:${var.gateway_port}/"
}

output "public_ip" {
  description = "Elastic IP address of the instance."
  value       = alicloud_eip_address.this.ip_address
}

output "token" {
  description = "Admin token for the gateway (generated when var.token is null). Read it with: terraform output -raw token."
  value       = local.token
  sensitive   = true
}

################################################################################
# Resources
################################################################################

output "instance_id" {
  description = "ID of the GPU instance."
  value       = alicloud_instance.this.id
}

output "zone_id" {
  description = "Zone the instance and the models disk were placed in."
  value       = local.zone_id
}

output "models_disk_id" {
  description = "ID of the data disk holding the models and user data; it is not deleted with the instance."
  value       = alicloud_ecs_disk.models.id
}

output "security_group_id" {
  description = "ID of the security group in front of the instance."
  value       = alicloud_security_group.this.id
}

output "vpc_id" {
  description = "ID of the VPC the instance runs in."
  value       = local.vpc_id
}

output "ssh_command" {
  description = "SSH command, when ssh_cidrs and a key pair are set; null otherwise."
  value       = length(var.ssh_cidrs) > 0 && local.key_pair_name != null ? "ssh root@${alicloud_eip_address.this.ip_address}" : null
}
