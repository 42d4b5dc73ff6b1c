################################################################################
# User data: first-boot setup script (templates/user_data.sh.tftpl)
################################################################################

locals {
  # Every value lands inside single quotes in the script; the variables' validations keep quotes out.
  user_data_vars = {
    bundle_git_url        = var.bundle_git_url
    bundle_git_ref        = var.bundle_git_ref
    image                 = var.image != null ? var.image : ""
    workflows             = join(",", var.workflows)
    token                 = local.token
    gateway_port          = var.gateway_port
    models_disk_id        = alicloud_ecs_disk.models.id
    nvidia_driver_version = var.nvidia_driver_version
    hf_endpoint           = var.hf_endpoint != null ? var.hf_endpoint : ""
    china_mirrors         = var.enable_china_mirrors ? "1" : "0"
  }

  user_data = templatefile("${path.module}/templates/user_data.sh.tftpl", local.user_data_vars)
}
