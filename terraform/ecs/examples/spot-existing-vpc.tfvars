# A spot instance in an existing VPC, with a prebuilt image from ACR, SSH from the office, and the
# Hugging Face mirror for mainland China. The token is generated: terraform output -raw token.
region        = "cn-shanghai"
name          = "wanx-trial"
vpc_id        = "vpc-uf6exampleexample0001"
vswitch_id    = "vsw-uf6exampleexample0001"
zone_id       = "cn-shanghai-l"
allowed_cidrs = ["203.0.113.0/28", "198.51.100.20/32"]
ssh_cidrs     = ["203.0.113.0/28"]

ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample ops@example.com"
enable_spot    = true

bundle_git_url   = "https://git.example.com/ops/wanx.git"
bundle_git_ref   = "v0.1.0"
image            = "registry-vpc.cn-shanghai.aliyuncs.com/team/wanx:0.1.0"
workflows        = ["vace"]
hf_endpoint      = "https://hf-mirror.com"
models_disk_size = 100

tags = {
  team = "video"
}
