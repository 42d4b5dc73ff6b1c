################################################################################
# Cluster
################################################################################

output "cluster_id" {
  description = "ID of the managed cluster."
  value       = alicloud_cs_managed_kubernetes.this.id
}

output "kubeconfig" {
  description = "Kubeconfig for the cluster (valid for kubeconfig_ttl_minutes). Save it with: terraform output -raw kubeconfig > wanx.kubeconfig."
  value       = data.alicloud_cs_cluster_credential.this.kube_config
  sensitive   = true
}

output "zone_ids" {
  description = "Zones of the cluster's vSwitches."
  value       = local.zone_ids
}

output "vpc_id" {
  description = "ID of the cluster's VPC."
  value       = alicloud_vpc.this.id
}

################################################################################
# Models storage
################################################################################

output "nas_file_system_id" {
  description = "ID of the NAS file system holding the models and user data."
  value       = alicloud_nas_file_system.this.id
}

output "nas_mount_target_domain" {
  description = "NAS mount target domain, the server of the wanx-storage PersistentVolume."
  value       = alicloud_nas_mount_target.this.mount_target_domain
}

################################################################################
# Workload
################################################################################

output "token" {
  description = "Admin token for the gateway (generated when var.token is null). Read it with: terraform output -raw token."
  value       = local.token
  sensitive   = true
}

output "kustomization" {
  description = "Site overlay for deploy/k8s/overlays/site/kustomization.yaml: the image, the token, the NAS server and the workflows. Sensitive: it holds the token."
  value       = local.site_kustomization
  sensitive   = true
}

output "apply_commands" {
  description = "Commands that save the site overlay and apply it, models first (run from the repository root)."
  value = join("\n", [
    "mkdir -p deploy/k8s/overlays/site",
    "(umask 077; terraform -chdir=terraform/acs output -raw kustomization > deploy/k8s/overlays/site/kustomization.yaml)",
    "mkdir -p ~/.kube && (umask 077; terraform -chdir=terraform/acs output -raw kubeconfig > ~/.kube/wanx) && export KUBECONFIG=~/.kube/wanx",
    "kubectl apply -k deploy/k8s/overlays/site -l 'app.kubernetes.io/component notin (comfyui)'",
    "kubectl -n wanx wait --for=condition=complete job/wanx-models-fetch --timeout=3h",
    "kubectl apply -k deploy/k8s/overlays/site",
    "kubectl -n wanx rollout status deploy/wanx --timeout=30m",
  ])
}
