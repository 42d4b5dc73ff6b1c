################################################################################
# VPC and vSwitch (created only when no existing ones are given)
################################################################################

resource "alicloud_vpc" "this" {
  count = local.create_network ? 1 : 0

  vpc_name   = var.name
  cidr_block = var.vpc_cidr
  tags       = local.tags
}

resource "alicloud_vswitch" "this" {
  count = local.create_network ? 1 : 0

  vswitch_name = var.name
  vpc_id       = alicloud_vpc.this[0].id
  cidr_block   = var.vswitch_cidr
  zone_id      = local.zone_id
  tags         = local.tags

  lifecycle {
    precondition {
      condition     = local.zone_id != null
      error_message = "No zone in ${var.region} has ${var.instance_type} in stock right now; try another region or instance_type, or set zone_id."
    }
  }
}

################################################################################
# Security group: the gateway port to allowed_cidrs, SSH only to ssh_cidrs
################################################################################

resource "alicloud_security_group" "this" {
  security_group_name = var.name
  description         = "wanx: token gateway only"
  vpc_id              = local.vpc_id
  inner_access_policy = "Drop"
  tags                = local.tags
}

resource "alicloud_security_group_rule" "gateway" {
  for_each = toset(var.allowed_cidrs)

  security_group_id = alicloud_security_group.this.id
  type              = "ingress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "${var.gateway_port}/${var.gateway_port}"
  cidr_ip           = each.value
  description       = "wanx gateway"
}

resource "alicloud_security_group_rule" "ssh" {
  for_each = toset(var.ssh_cidrs)

  security_group_id = alicloud_security_group.this.id
  type              = "ingress"
  ip_protocol       = "tcp"
  nic_type          = "intranet"
  policy            = "accept"
  port_range        = "22/22"
  cidr_ip           = each.value
  description       = "wanx ssh"
}
