provider "alicloud" {
  region = var.region
}

locals {
  tags = merge({ "app" = "wanx", "managed-by" = "terraform" }, var.tags)

  create_network = var.vpc_id == null
  vpc_id         = local.create_network ? alicloud_vpc.this[0].id : var.vpc_id
  vswitch_id     = local.create_network ? alicloud_vswitch.this[0].id : var.vswitch_id

  # Zones where the type is in stock now: the data source drops SoldOut entries.
  stock_zones = try(data.alicloud_instance_types.this.instance_types[0].availability_zones, [])
  zone_id     = var.zone_id != null ? var.zone_id : try(local.stock_zones[0], null)

  image_id      = var.image_id != null ? var.image_id : try(data.alicloud_images.this[0].images[0].id, null)
  key_pair_name = var.key_pair_name != null ? var.key_pair_name : try(alicloud_ecs_key_pair.this[0].key_pair_name, null)
  spot_strategy = var.enable_spot ? "SpotAsPriceGo" : "NoSpot"
  token         = var.token != null ? var.token : random_password.token[0].result
}

################################################################################
# Placement and image
################################################################################

data "alicloud_instance_types" "this" {
  instance_type        = var.instance_type
  availability_zone    = var.zone_id
  instance_charge_type = "PostPaid"
  spot_strategy        = local.spot_strategy
  system_disk_category = "cloud_essd"
}

data "alicloud_images" "this" {
  count = var.image_id == null ? 1 : 0

  owners        = "system"
  name_regex    = var.image_name_regex
  most_recent   = true
  instance_type = var.instance_type
  architecture  = "x86_64"
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
# Key pair (optional)
################################################################################

resource "alicloud_ecs_key_pair" "this" {
  count = var.key_pair_name == null && var.ssh_public_key != null ? 1 : 0

  key_pair_name = var.name
  public_key    = var.ssh_public_key
  tags          = local.tags
}

################################################################################
# Models disk: a separate disk so the weights outlive the instance
################################################################################

resource "alicloud_ecs_disk" "models" {
  zone_id              = local.zone_id
  disk_name            = "${var.name}-models"
  category             = var.models_disk_category
  size                 = var.models_disk_size
  encrypted            = var.enable_disk_encryption
  delete_with_instance = false
  payment_type         = "PayAsYouGo"
  tags                 = local.tags

  lifecycle {
    precondition {
      condition     = local.zone_id != null
      error_message = "No zone in ${var.region} has ${var.instance_type} in stock right now; try another region, another instance_type, or enable_spot = ${!var.enable_spot}."
    }
  }
}

################################################################################
# GPU instance
################################################################################

resource "alicloud_instance" "this" {
  instance_name        = var.name
  host_name            = var.name
  instance_type        = var.instance_type
  image_id             = local.image_id
  vswitch_id           = local.vswitch_id
  security_groups      = [alicloud_security_group.this.id]
  instance_charge_type = "PostPaid"
  spot_strategy        = local.spot_strategy
  key_name             = local.key_pair_name
  deletion_protection  = var.deletion_protection

  # No public IP on the instance itself: the elastic IP below stays when the instance is replaced.
  internet_max_bandwidth_out = 0

  system_disk_category  = "cloud_essd"
  system_disk_size      = var.system_disk_size
  system_disk_encrypted = var.enable_disk_encryption

  user_data                     = base64encode(local.user_data)
  http_tokens                   = "required"
  security_enhancement_strategy = "Active"

  tags        = local.tags
  volume_tags = local.tags

  lifecycle {
    # A newer image or edited user data would rebuild or reboot a running host; user data runs at first boot only.
    ignore_changes = [image_id, user_data]

    precondition {
      condition     = local.image_id != null
      error_message = "No public image matches image_name_regex \"${var.image_name_regex}\" for ${var.instance_type}; set image_id or another pattern."
    }
  }
}

resource "alicloud_ecs_disk_attachment" "models" {
  instance_id = alicloud_instance.this.id
  disk_id     = alicloud_ecs_disk.models.id
}

resource "alicloud_ecs_ram_role_attachment" "this" {
  count = var.ram_role_name != null ? 1 : 0

  instance_id   = alicloud_instance.this.id
  ram_role_name = var.ram_role_name
}

################################################################################
# Elastic IP
################################################################################

resource "alicloud_eip_address" "this" {
  address_name         = var.name
  bandwidth            = var.eip_bandwidth
  internet_charge_type = "PayByTraffic"
  payment_type         = "PayAsYouGo"
  tags                 = local.tags
}

resource "alicloud_eip_association" "this" {
  allocation_id = alicloud_eip_address.this.id
  instance_id   = alicloud_instance.this.id
  instance_type = "EcsInstance"
}
