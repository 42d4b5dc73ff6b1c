################################################################################
# NAS for the models and user data, reachable only from the VPC
################################################################################

resource "alicloud_nas_file_system" "this" {
  file_system_type = "standard"
  protocol_type    = "NFS"
  storage_type     = var.nas_storage_type
  zone_id          = local.zone_ids[0]
  encrypt_type     = var.nas_encrypt_type
  description      = "${var.name} models"
  tags             = local.tags
}

resource "alicloud_nas_access_group" "this" {
  access_group_name = var.name
  access_group_type = "Vpc"
  file_system_type  = "standard"
  description       = "${var.name}: cluster VPC only"
}

# no_squash: the pods' init containers hand models/ and data/ to the app user as root.
resource "alicloud_nas_access_rule" "vpc" {
  access_group_name = alicloud_nas_access_group.this.access_group_name
  file_system_type  = "standard"
  source_cidr_ip    = var.vpc_cidr
  rw_access_type    = "RDWR"
  user_access_type  = "no_squash"
  priority          = 1
}

resource "alicloud_nas_mount_target" "this" {
  file_system_id    = alicloud_nas_file_system.this.id
  access_group_name = alicloud_nas_access_group.this.access_group_name
  vpc_id            = alicloud_vpc.this.id
  vswitch_id        = alicloud_vswitch.this[0].id
  network_type      = "Vpc"
}
