# ACS: serverless GPU pods (your account needs the A10 grant in these zones). Copy to terraform.tfvars.
region                   = "cn-hangzhou"
profile                  = "acs"
zone_ids                 = ["cn-hangzhou-b", "cn-hangzhou-k"]
image                    = "registry-vpc.cn-hangzhou.aliyuncs.com/team/wanx:0.1.0"
gpu_model_series         = "A10"
enable_public_api_server = true
