provider "alicloud" {
  region = var.region
}

locals {
  tags   = merge({ "app" = "wanx", "managed-by" = "terraform" }, var.tags)
  is_ack = var.profile == "ack"

  gpu_stock_zones = try(data.alicloud_instance_types.gpu[0].instance_types[0].availability_zones, [])
  nat_zones       = try([for z in data.alicloud_enhanced_nat_available_zones.this[0].zones : z.zone_id], [])
  default_zones   = local.is_ack ? local.gpu_stock_zones : local.nat_zones
  zone_ids        = var.zone_ids != null ? var.zone_ids : slice(local.default_zones, 0, min(2, length(local.default_zones)))

  token              = var.token != null ? var.token : random_password.token[0].result
  node_key_pair_name = var.node_key_pair_name != null ? var.node_key_pair_name : try(alicloud_ecs_key_pair.nodes[0].key_pair_name, null)
}

################################################################################
# Zones
################################################################################

data "alicloud_instance_types" "gpu" {
  count = local.is_ack && var.zone_ids == null ? 1 : 0

  instance_type        = var.gpu_instance_types[0]
  instance_charge_type = "PostPaid"
  system_disk_category = "cloud_essd"
  kubernetes_node_role = "Worker"
}

data "alicloud_enhanced_nat_available_zones" "this" {
  count = !local.is_ack && var.zone_ids == null ? 1 : 0
}

################################################################################
# Gateway token
################################################################################

resource "random_password" "token" {
  count = var.token == null ? 1 : 0

  length  = 40
  special = false
}

################################################################################
# Cluster: ACS (profile Acs, serverless pods) or ACK Pro (GPU node pool below)
################################################################################

resource "alicloud_cs_managed_kubernetes" "this" {
  name                 = var.name
  profile              = local.is_ack ? "Default" : "Acs"
  cluster_spec         = var.cluster_spec
  version              = var.kubernetes_version
  vswitch_ids          = alicloud_vswitch.this[*].id
  pod_vswitch_ids      = alicloud_vswitch.this[*].id
  service_cidr         = var.service_cidr
  new_nat_gateway      = true
  slb_internet_enabled = var.enable_public_api_server
  deletion_protection  = var.deletion_protection
  tags                 = local.tags

  # Create-only: later changes go through alicloud_cs_kubernetes_addon.
  dynamic "addons" {
    for_each = local.is_ack ? ["terway-eniip", "csi-plugin", "managed-csiprovisioner"] : []
    content {
      name = addons.value
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.zone_ids) > 0
      error_message = "No zone found for the cluster (for ack: none has ${var.gpu_instance_types[0]} in stock); set zone_ids or try another region."
    }
  }
}

data "alicloud_cs_cluster_credential" "this" {
  cluster_id                 = alicloud_cs_managed_kubernetes.this.id
  temporary_duration_minutes = var.kubeconfig_ttl_minutes
}

################################################################################
# Node pools (ack only): CPU nodes for add-ons and the fetch Job, tainted GPU nodes for wanx
################################################################################

# Managed node pools log in by key pair only. Without node_key_pair_name, one is created whose private
# key is never saved: nodes are managed by ACK and nobody logs in to them.
resource "alicloud_ecs_key_pair" "nodes" {
  count = local.is_ack && var.node_key_pair_name == null ? 1 : 0

  key_pair_name = "${var.name}-nodes"
  tags          = local.tags
}

resource "alicloud_cs_kubernetes_node_pool" "system" {
  count = local.is_ack ? 1 : 0

  cluster_id           = alicloud_cs_managed_kubernetes.this.id
  node_pool_name       = "${var.name}-system"
  vswitch_ids          = alicloud_vswitch.this[*].id
  instance_types       = var.system_instance_types
  desired_size         = var.system_node_count
  instance_charge_type = "PostPaid"
  image_type           = "AliyunLinux3"
  system_disk_category = "cloud_essd"
  system_disk_size     = 120
  key_name             = local.node_key_pair_name

  management {
    enable      = true
    auto_repair = true
  }
}

resource "alicloud_cs_kubernetes_node_pool" "gpu" {
  count = local.is_ack ? 1 : 0

  cluster_id           = alicloud_cs_managed_kubernetes.this.id
  node_pool_name       = "${var.name}-gpu"
  vswitch_ids          = alicloud_vswitch.this[*].id
  instance_types       = var.gpu_instance_types
  desired_size         = var.gpu_node_count
  instance_charge_type = "PostPaid"
  image_type           = "AliyunLinux3"
  system_disk_category = "cloud_essd"
  system_disk_size     = 200
  key_name             = local.node_key_pair_name

  taints {
    key    = "nvidia.com/gpu"
    value  = "present"
    effect = "NoSchedule"
  }

  dynamic "labels" {
    for_each = var.nvidia_driver_version != null ? [var.nvidia_driver_version] : []
    content {
      key   = "ack.aliyun.com/nvidia-driver-version"
      value = labels.value
    }
  }

  management {
    enable      = true
    auto_repair = true
  }
}
