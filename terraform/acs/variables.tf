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

variable "profile" {
  description = "Cluster kind: \"acs\" (Container Compute Service, serverless GPU pods, no nodes to manage; GPU models need a grant from Alibaba Cloud) or \"ack\" (ACK Pro with a GPU node pool)."
  type        = string
  default     = "acs"

  validation {
    condition     = contains(["acs", "ack"], var.profile)
    error_message = "The profile must be \"acs\" or \"ack\"."
  }
}

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.43.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "The vpc_cidr must be an IPv4 CIDR block such as 10.43.0.0/16."
  }
}

variable "zone_ids" {
  description = "Zones for the vSwitches (one vSwitch each, up to two). When null: for ack, zones where the first GPU instance type is in stock; for acs, zones that offer enhanced NAT gateways. On ACS, pick zones where your GPU model is granted."
  type        = list(string)
  default     = null

  validation {
    condition     = var.zone_ids == null || (length(coalesce(var.zone_ids, [])) >= 1 && length(coalesce(var.zone_ids, [])) <= 2)
    error_message = "The zone_ids must list one or two zones such as [\"cn-hangzhou-k\", \"cn-hangzhou-j\"], or be null."
  }
}

variable "service_cidr" {
  description = "CIDR block for Kubernetes Services; must not overlap vpc_cidr."
  type        = string
  default     = "172.21.0.0/20"

  validation {
    condition     = can(cidrhost(var.service_cidr, 0))
    error_message = "The service_cidr must be an IPv4 CIDR block such as 172.21.0.0/20."
  }
}

variable "enable_public_api_server" {
  description = "Give the API server a public address (it still needs the client certificate in the kubeconfig). Off by default: run kubectl from inside the VPC, or turn this on to run it from your machine."
  type        = bool
  default     = false
}

################################################################################
# Cluster
################################################################################

variable "cluster_spec" {
  description = "Managed cluster edition."
  type        = string
  default     = "ack.pro.small"

  validation {
    condition     = contains(["ack.pro.small", "ack.pro.xlarge", "ack.standard"], var.cluster_spec)
    error_message = "The cluster_spec must be ack.pro.small, ack.pro.xlarge or ack.standard."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes version of the cluster. Null takes the newest the region offers."
  type        = string
  default     = null

  validation {
    condition     = var.kubernetes_version == null || can(regex("^1\\.[0-9]+\\.[0-9]+(-aliyun\\.[0-9]+)?$", coalesce(var.kubernetes_version, "1.0.0")))
    error_message = "The kubernetes_version must look like 1.33.3-aliyun.1, or be null."
  }
}

variable "deletion_protection" {
  description = "Protect the cluster from deletion (turn off before terraform destroy)."
  type        = bool
  default     = false
}

variable "kubeconfig_ttl_minutes" {
  description = "Lifetime of the kubeconfig in the kubeconfig output, in minutes (it is issued again on each refresh)."
  type        = number
  default     = 4320

  validation {
    condition     = var.kubeconfig_ttl_minutes >= 15 && var.kubeconfig_ttl_minutes <= 4320
    error_message = "The kubeconfig_ttl_minutes must be from 15 to 4320."
  }
}

################################################################################
# Nodes (profile = "ack" only)
################################################################################

variable "gpu_instance_types" {
  description = "GPU node types for profile ack, tried in order when one is out of stock."
  type        = list(string)
  default     = ["ecs.gn7i-c16g1.4xlarge"]

  validation {
    condition     = length(var.gpu_instance_types) > 0 && alltrue([for t in var.gpu_instance_types : can(regex("^ecs\\.[a-z0-9-]+\\.[a-z0-9]+$", t))])
    error_message = "The gpu_instance_types must list ECS instance types such as ecs.gn7i-c16g1.4xlarge."
  }
}

variable "gpu_node_count" {
  description = "Number of GPU nodes for profile ack (one wanx replica per GPU)."
  type        = number
  default     = 1

  validation {
    condition     = var.gpu_node_count >= 0 && var.gpu_node_count <= 50
    error_message = "The gpu_node_count must be from 0 to 50."
  }
}

variable "system_instance_types" {
  description = "CPU node types for profile ack (cluster add-ons and the models fetch Job)."
  type        = list(string)
  default     = ["ecs.u1-c1m2.xlarge"]

  validation {
    condition     = length(var.system_instance_types) > 0 && alltrue([for t in var.system_instance_types : can(regex("^ecs\\.[a-z0-9-]+\\.[a-z0-9]+$", t))])
    error_message = "The system_instance_types must list ECS instance types such as ecs.u1-c1m2.xlarge."
  }
}

variable "system_node_count" {
  description = "Number of CPU nodes for profile ack."
  type        = number
  default     = 1

  validation {
    condition     = var.system_node_count >= 1 && var.system_node_count <= 10
    error_message = "The system_node_count must be from 1 to 10: cluster add-ons need a node without the GPU taint."
  }
}

variable "node_key_pair_name" {
  description = "Existing ECS key pair for node login (profile ack; managed node pools take a key pair, not a password). When null, a key pair is created whose private key is not kept."
  type        = string
  default     = null
}

variable "nvidia_driver_version" {
  description = "NVIDIA driver for new GPU nodes (profile ack), set as the node pool label ack.aliyun.com/nvidia-driver-version. Null keeps ACK's default."
  type        = string
  default     = null

  validation {
    condition     = var.nvidia_driver_version == null || can(regex("^[0-9]+\\.[0-9]+(\\.[0-9]+)?$", coalesce(var.nvidia_driver_version, "0.0")))
    error_message = "The nvidia_driver_version must be a full driver version such as 550.144.03, or be null."
  }
}

################################################################################
# Models storage (NAS)
################################################################################

variable "nas_storage_type" {
  description = "General-purpose NAS storage type for the models and user data: Performance (faster model loads) or Capacity (cheaper)."
  type        = string
  default     = "Performance"

  validation {
    condition     = contains(["Performance", "Capacity", "Premium"], var.nas_storage_type)
    error_message = "The nas_storage_type must be Performance, Capacity or Premium."
  }
}

variable "nas_encrypt_type" {
  description = "NAS encryption: 0 none, 1 NAS-managed key, 2 your KMS key."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1, 2], var.nas_encrypt_type)
    error_message = "The nas_encrypt_type must be 0, 1 or 2."
  }
}

################################################################################
# Workload (the site overlay in the kustomization output)
################################################################################

variable "image" {
  description = "Container image reference the cluster pulls, for example a copy in your ACR registry (registry-vpc.<region>.aliyuncs.com/<namespace>/wanx:<tag> pulls inside the VPC)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9./_-]*(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$", var.image))
    error_message = "The image must be a container image reference such as registry.cn-hangzhou.aliyuncs.com/team/wanx:0.1.0."
  }
}

variable "workflows" {
  description = "Workflows whose models the fetch Job downloads."
  type        = list(string)
  default     = ["wanx-21", "vace"]

  validation {
    condition     = length(var.workflows) > 0 && alltrue([for w in var.workflows : contains(["wanx-21", "vace"], w)])
    error_message = "The workflows must list one or both of \"wanx-21\" and \"vace\"."
  }
}

variable "gpu_model_series" {
  description = "GPU model for ACS pods (label alibabacloud.com/gpu-model-series), one your account has been granted, such as A10 or L20. Ignored for ack."
  type        = string
  default     = "A10"

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+$", var.gpu_model_series))
    error_message = "The gpu_model_series must be a GPU model name such as A10 or L20."
  }
}

variable "token" {
  description = "Admin token for the gateway. When null, a random 40-character token is generated."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.token == null || can(regex("^[A-Za-z0-9_-]{24,128}$", var.token))
    error_message = "The token must be 24 to 128 letters, digits, '_' or '-'; leave it null to have one generated."
  }
}
