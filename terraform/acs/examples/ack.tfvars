# ACK Pro with one A10 GPU node (falling back to the smaller type when out of stock) and one CPU node.
region                   = "cn-beijing"
profile                  = "ack"
image                    = "registry-vpc.cn-beijing.aliyuncs.com/team/wanx:0.1.0"
gpu_instance_types       = ["ecs.gn7i-c16g1.4xlarge", "ecs.gn7i-c32g1.8xlarge"]
gpu_node_count           = 1
workflows                = ["wanx-21", "vace"]
enable_public_api_server = true

tags = {
  team = "video"
}
