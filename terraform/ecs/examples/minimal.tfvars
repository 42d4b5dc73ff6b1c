# One GPU machine in Hangzhou, reachable from one office address. Copy to terraform.tfvars and edit.
region         = "cn-hangzhou"
allowed_cidrs  = ["203.0.113.7/32"]
bundle_git_url = "https://git.example.com/ops/wanx.git"
bundle_git_ref = "main"
