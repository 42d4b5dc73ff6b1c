################################################################################
# VPC and vSwitches (egress through the NAT gateway the cluster creates)
################################################################################

resource "alicloud_vpc" "this" {
  vpc_name   = var.name
  cidr_block = var.vpc_cidr
  tags       = local.tags
}

resource "alicloud_vswitch" "this" {
  count = length(local.zone_ids)

  vswitch_name = "${var.name}-${count.index}"
  vpc_id       = alicloud_vpc.this.id
  cidr_block   = cidrsubnet(var.vpc_cidr, 4, count.index)
  zone_id      = local.zone_ids[count.index]
  tags         = local.tags
}
