################################################################################
# Site overlay: the kustomization that applies deploy/k8s/overlays/<profile> with this cluster's
# values. Saved by the user to deploy/k8s/overlays/site/ (git-ignored), applied with kubectl -k.
################################################################################

locals {
  image_no_digest = split("@", var.image)[0]
  image_digest    = length(split("@", var.image)) == 2 ? split("@", var.image)[1] : null
  image_parts     = split(":", local.image_no_digest)

  site_image = merge(
    { name = "wanx", newName = local.image_parts[0] },
    length(local.image_parts) == 2 ? { newTag = local.image_parts[1] } : {},
    local.image_digest != null ? { digest = local.image_digest } : {},
  )

  fetch_command = concat(
    ["wanx", "models", "fetch", "--models-dir", "/models"],
    flatten([for w in var.workflows : ["--workflow", w]]),
  )

  # JSON patches by index: tests/cloud/test_k8s.py checks each index names the container meant here.
  site_patches = concat(
    [
      {
        target = { kind = "PersistentVolume", name = "wanx-storage" }
        patch  = jsonencode([{ op = "replace", path = "/spec/csi/volumeAttributes/server", value = alicloud_nas_mount_target.this.mount_target_domain }])
      },
      {
        target = { kind = "Job", name = "wanx-models-fetch" }
        patch  = jsonencode([{ op = "replace", path = "/spec/template/spec/containers/0/command", value = local.fetch_command }])
      },
      {
        target = { kind = "Deployment", name = "wanx" }
        patch  = jsonencode([{ op = "replace", path = "/spec/template/spec/initContainers/1/command", value = local.fetch_command }])
      },
    ],
    local.is_ack ? [] : [
      {
        target = { kind = "Deployment", name = "wanx" }
        patch  = jsonencode([{ op = "replace", path = "/spec/template/metadata/labels/alibabacloud.com~1gpu-model-series", value = var.gpu_model_series }])
      },
    ],
  )

  site_kustomization = yamlencode({
    apiVersion = "kustomize.config.k8s.io/v1beta1"
    kind       = "Kustomization"
    resources  = ["../${var.profile}"]
    images     = [local.site_image]
    secretGenerator = [{
      name     = "wanx-token"
      behavior = "merge"
      literals = ["WANX_TOKEN=${local.token}"]
    }]
    patches = local.site_patches
  })
}
