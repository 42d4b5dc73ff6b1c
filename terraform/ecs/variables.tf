################################################################################
# General
################################################################################

variable "region" {
  description = "Alibaba Cloud region to deploy into, for example cn-hangzhou or ap-southeast-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}-[a-z0-9]+(-[a-z0-9]+)*$", var.region))
    error_message = "The region must be an Alibaba Cloud region ID such as cn-hangzhou or ap-southeast-1."
  }
}

variable "name" {
  description = "Name prefix for every resource this root creates."
  type        = string
  default     = "wanx"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "The name must be 3 to 32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

################################################################################
# Network
################################################################################

variable "vpc_id" {
  description = "ID of an existing VPC to use. When null, a VPC is created with vpc_cidr. Set vswitch_id with it."
  type        = string
  default     = null
}

variable "vswitch_id" {
  description = "ID of an existing vSwitch in vpc_id, in a zone where instance_type is in stock. When null, one is created in the chosen zone."
  type        = string
  default     = null

  validation {
    condition     = var.vswitch_id == null || var.vpc_id != null
    error_message = "The vswitch_id can only be set together with vpc_id; set both or neither."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC created when vpc_id is null."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "The vpc_cidr must be an IPv4 CIDR block such as 10.42.0.0/16."
  }
}

variable "vswitch_cidr" {
  description = "CIDR block of the vSwitch created when vswitch_id is null; must lie inside vpc_cidr."
  type        = string
  default     = "10.42.1.0/24"

  validation {
    condition     = can(cidrhost(var.vswitch_cidr, 0))
    error_message = "The vswitch_cidr must be an IPv4 CIDR block such as 10.42.1.0/24."
  }
}

variable "allowed_cidrs" {
  description = "Source CIDR blocks allowed to reach the gateway port. Required: nothing is open by default. 0.0.0.0/0 and blocks wider than /8 are refused unless allow_public_ingress is true."
  type        = list(string)

  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "The allowed_cidrs must hold at least one IPv4 CIDR block, such as [\"203.0.113.7/32\"] for one office address."
  }

  validation {
    condition     = var.allow_public_ingress || alltrue([for c in var.allowed_cidrs : c != "0.0.0.0/0" && can(regex("/([89]|[12][0-9]|3[0-2])$", c))])
    error_message = "The allowed_cidrs contains 0.0.0.0/0 or a block wider than /8, which opens the gateway to a large part of the internet; list your own addresses, or set allow_public_ingress = true if you really mean it."
  }
}

variable "allow_public_ingress" {
  description = "Accept 0.0.0.0/0 and blocks wider than /8 in allowed_cidrs (the gateway still asks for the token). Off by default."
  type        = bool
  default     = false
}

variable "ssh_cidrs" {
  description = "Source CIDR blocks allowed to reach SSH (port 22). Empty (the default) opens no SSH port; use Cloud Assistant or Workbench instead. 0.0.0.0/0 and blocks wider than /8 are always refused."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0" && can(regex("/([89]|[12][0-9]|3[0-2])$", c))])
    error_message = "Each ssh_cidrs entry must be an IPv4 CIDR block no wider than /8 (never 0.0.0.0/0), such as 203.0.113.7/32."
  }
}

variable "gateway_port" {
  description = "Port users reach the token gateway on (the host port make up publishes; the gateway listens on 8080 inside the container)."
  type        = number
  default     = 8188

  validation {
    condition     = var.gateway_port >= 1 && var.gateway_port <= 65535 && var.gateway_port != 22
    error_message = "The gateway_port must be a TCP port from 1 to 65535 other than 22."
  }
}

variable "eip_bandwidth" {
  description = "Peak bandwidth of the elastic IP in Mbit/s (billed by traffic)."
  type        = number
  default     = 50

  validation {
    condition     = var.eip_bandwidth >= 1 && var.eip_bandwidth <= 200
    error_message = "The eip_bandwidth must be from 1 to 200 Mbit/s for pay-by-traffic elastic IPs."
  }
}

################################################################################
# Instance
################################################################################

variable "instance_type" {
  description = "GPU instance type. The default (A10 24 GB, 16 vCPU, 60 GiB) fits both workflows; the 14B image-to-video model needs about 60 GiB of host memory."
  type        = string
  default     = "ecs.gn7i-c16g1.4xlarge"

  validation {
    condition     = can(regex("^ecs\\.[a-z0-9-]+\\.[a-z0-9]+$", var.instance_type))
    error_message = "The instance_type must be an ECS instance type such as ecs.gn7i-c16g1.4xlarge."
  }
}

variable "zone_id" {
  description = "Zone to place the instance and the models disk in. When null, the first zone where instance_type is in stock is chosen. Required with vswitch_id (the vSwitch's zone)."
  type        = string
  default     = null

  validation {
    condition     = var.zone_id != null || var.vswitch_id == null
    error_message = "The zone_id must be set when vswitch_id is set: give the zone of that vSwitch."
  }

  validation {
    condition     = var.zone_id == null || can(regex("^[a-z]{2}-[a-z0-9-]+$", var.zone_id))
    error_message = "The zone_id must be a zone ID such as cn-hangzhou-k."
  }
}

variable "image_id" {
  description = "Image ID for the instance (for example one with the NVIDIA driver baked in). When null, the newest public image matching image_name_regex is used."
  type        = string
  default     = null
}

variable "image_name_regex" {
  description = "Name pattern of the public system image used when image_id is null. The user data supports Ubuntu and Alibaba Cloud Linux 3; make up needs Python 3.11 or newer."
  type        = string
  default     = "^ubuntu_24_04_x64_20G_alibase_"

  validation {
    condition     = can(regexall(var.image_name_regex, ""))
    error_message = "The image_name_regex must be a valid regular expression such as ^ubuntu_24_04_x64_20G_alibase_."
  }
}

variable "system_disk_size" {
  description = "System disk size in GiB (container images take 20 to 30 GiB)."
  type        = number
  default     = 100

  validation {
    condition     = var.system_disk_size >= 40 && var.system_disk_size <= 500
    error_message = "The system_disk_size must be from 40 to 500 GiB."
  }
}

variable "enable_spot" {
  description = "Run as a spot instance (SpotAsPriceGo): much cheaper, but Alibaba Cloud may reclaim it; the models disk survives."
  type        = bool
  default     = false
}

variable "key_pair_name" {
  description = "Name of an existing ECS key pair to install for SSH. Leave null with ssh_public_key null for no key."
  type        = string
  default     = null
}

variable "ssh_public_key" {
  description = "OpenSSH public key to import as a new key pair (ignored when key_pair_name is set)."
  type        = string
  default     = null

  validation {
    condition     = var.ssh_public_key == null || can(regex("^(ssh-(rsa|ed25519)|ecdsa-sha2-nistp(256|384|521)) ", var.ssh_public_key))
    error_message = "The ssh_public_key must be an OpenSSH public key line starting with ssh-ed25519, ssh-rsa or ecdsa-sha2-."
  }
}

variable "ram_role_name" {
  description = "Name of an existing RAM role to attach to the instance (for example one that reads a model bucket in OSS). Null attaches none; nothing here needs one."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the instance from deletion through the API and console (turn off before terraform destroy)."
  type        = bool
  default     = false
}

################################################################################
# Models disk
################################################################################

variable "models_disk_size" {
  description = "Size in GiB of the data disk that holds the model weights and user data; it outlives the instance. Both workflows need about 40 GiB of weights."
  type        = number
  default     = 200

  validation {
    condition     = var.models_disk_size >= 60 && var.models_disk_size <= 32768
    error_message = "The models_disk_size must be from 60 to 32768 GiB; both workflows need about 40 GiB of weights."
  }
}

variable "enable_disk_encryption" {
  description = "Encrypt the system and models disks with the account's default KMS service key (KMS must be available in the region)."
  type        = bool
  default     = true
}

variable "models_disk_category" {
  description = "Category of the models disk."
  type        = string
  default     = "cloud_essd"

  validation {
    condition     = contains(["cloud_essd", "cloud_auto", "cloud_essd_entry", "cloud_efficiency", "cloud_ssd"], var.models_disk_category)
    error_message = "The models_disk_category must be one of cloud_essd, cloud_auto, cloud_essd_entry, cloud_efficiency or cloud_ssd."
  }
}

################################################################################
# Bundle and runtime
################################################################################

variable "bundle_git_url" {
  description = "Git URL of this bundle, cloned on the instance (a mirror reachable from the region, if GitHub is slow there)."
  type        = string

  validation {
    condition     = can(regex("^(https://|git@)[^\\s'\"]+$", var.bundle_git_url))
    error_message = "The bundle_git_url must be an https:// or git@ URL without spaces or quotes."
  }
}

variable "bundle_git_ref" {
  description = "Branch, tag or commit of the bundle to check out."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.bundle_git_ref))
    error_message = "The bundle_git_ref must be a branch, tag or commit made of letters, digits, '.', '_', '/' or '-'."
  }
}

variable "image" {
  description = "Container image reference to pull (WANX_IMAGE), for example a copy in your ACR registry. Null builds the image on the instance, which needs GitHub and takes a while."
  type        = string
  default     = null

  validation {
    condition     = var.image == null || can(regex("^[a-z0-9][a-z0-9./_:@-]*$", var.image))
    error_message = "The image must be a container image reference such as registry.cn-hangzhou.aliyuncs.com/team/wanx:0.1.0."
  }
}

variable "workflows" {
  description = "Workflows whose models are fetched and served."
  type        = list(string)
  default     = ["wanx-21", "vace"]

  validation {
    condition     = length(var.workflows) > 0 && alltrue([for w in var.workflows : contains(["wanx-21", "vace"], w)])
    error_message = "The workflows must list one or both of \"wanx-21\" and \"vace\"."
  }
}

variable "token" {
  description = "Admin token for the gateway. When null, a random 40-character token is generated; read it with terraform output -raw token."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.token == null || can(regex("^[A-Za-z0-9_-]{24,128}$", var.token))
    error_message = "The token must be 24 to 128 letters, digits, '_' or '-'; leave it null to have one generated."
  }
}

variable "nvidia_driver_version" {
  description = "Major version of the NVIDIA driver installed when the image has none (the image's CUDA 12 build runs on 525 and newer)."
  type        = string
  default     = "550"

  validation {
    condition     = can(regex("^[0-9]{3}$", var.nvidia_driver_version))
    error_message = "The nvidia_driver_version must be a driver major version such as 550."
  }
}

variable "hf_endpoint" {
  description = "Hugging Face endpoint for the model fetcher (HF_ENDPOINT), for example https://hf-mirror.com in mainland China. Null keeps the default."
  type        = string
  default     = null

  validation {
    condition     = var.hf_endpoint == null || can(regex("^https://[^\\s'\"]+$", var.hf_endpoint))
    error_message = "The hf_endpoint must be an https:// URL such as https://hf-mirror.com."
  }
}

variable "enable_china_mirrors" {
  description = "Try Alibaba Cloud and other mainland-China mirrors first for Docker, the NVIDIA toolkit and pip (the official sources stay as fallbacks)."
  type        = bool
  default     = true
}
