"""The site overlay terraform/acs prints (output "kustomization"), produced by Terraform itself from the
real site.tf and variables.tf, then built with kubectl kustomize over a copy of deploy/k8s and validated.
Alibaba Cloud stands in as one local: the NAS mount target domain. Needs terraform >= 1.9 and kubectl."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.cloud.tf import REPO, ROOTS, find_terraform, run_terraform

TERRAFORM = find_terraform()
KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(
    TERRAFORM is None or KUBECTL is None,
    reason="needs terraform >= 1.9 (TERRAFORM=/path or on PATH) and kubectl to render and build the site overlay",
)

NAS = "0a1b2c3d4e-xyz12.cn-hangzhou.nas.aliyuncs.com"
TOKEN = "site-token-0123456789abcdefghijklmn"
# What main.tf provides to site.tf, and the one cloud attribute it reads, stood in here.
STUB = f"""
locals {{
  is_ack = var.profile == "ack"
  token  = var.token != null ? var.token : "unused"
  nas    = "{NAS}"
}}

output "kustomization" {{
  value     = local.site_kustomization
  sensitive = true
}}
"""


def render_site(tmp_path: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    assert TERRAFORM and KUBECTL
    work = tmp_path / "tf"
    work.mkdir()
    shutil.copy(ROOTS["acs"] / "variables.tf", work / "variables.tf")
    site = (ROOTS["acs"] / "site.tf").read_text(encoding="utf-8")
    assert "alicloud_nas_mount_target.this.mount_target_domain" in site
    (work / "site.tf").write_text(site.replace("alicloud_nas_mount_target.this.mount_target_domain", "local.nas"))
    (work / "stub.tf").write_text(STUB)
    (work / "terraform.tfvars.json").write_text(json.dumps(values))
    for args in (("init", "-backend=false", "-input=false"), ("apply", "-auto-approve", "-input=false")):
        result = run_terraform(TERRAFORM, work, *args)
        assert result.returncode == 0, result.stdout + result.stderr
    kustomization = run_terraform(TERRAFORM, work, "output", "-raw", "kustomization").stdout

    k8s = tmp_path / "k8s"
    shutil.copytree(REPO / "deploy/k8s", k8s, ignore=shutil.ignore_patterns("site"))
    (k8s / "overlays/site").mkdir()
    (k8s / "overlays/site/kustomization.yaml").write_text(kustomization)
    built = subprocess.run(
        [KUBECTL, "kustomize", str(k8s / "overlays/site")], capture_output=True, text=True, timeout=60, check=False
    )
    assert built.returncode == 0, built.stderr + kustomization
    return [d for d in yaml.safe_load_all(built.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith("wanx")]
    return doc


@pytest.mark.parametrize("profile", ["acs", "ack"])
def test_site_overlay_sets_image_token_nas_and_workflows(profile: str, tmp_path: Path) -> None:
    docs = render_site(
        tmp_path,
        {
            "region": "cn-hangzhou",
            "profile": profile,
            "image": "registry-vpc.cn-hangzhou.aliyuncs.com/team/wanx:0.1.0",
            "workflows": ["vace"],
            "gpu_model_series": "L20",
            "token": TOKEN,
        },
    )
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
    secret = by_kind(docs, "Secret")
    assert base64.b64decode(secret["data"]["WANX_TOKEN"]).decode() == TOKEN
    assert by_kind(docs, "PersistentVolume")["spec"]["csi"]["volumeAttributes"]["server"] == NAS
    deployment = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]
    job_pod = by_kind(docs, "Job")["spec"]["template"]
    fetch = ["wanx", "models", "fetch", "--models-dir", "/models", "--workflow", "vace"]
    assert job_pod["spec"]["containers"][0]["command"] == fetch
    assert pod["spec"]["initContainers"][1]["command"] == fetch
    images = {c["image"] for p in (pod, job_pod) for c in (*p["spec"]["initContainers"], *p["spec"]["containers"])}
    assert images == {"registry-vpc.cn-hangzhou.aliyuncs.com/team/wanx:0.1.0"}
    if profile == "acs":
        assert pod["metadata"]["labels"]["alibabacloud.com/gpu-model-series"] == "L20"
    else:
        assert "alibabacloud.com/gpu-model-series" not in pod["metadata"]["labels"]
        assert pod["spec"]["tolerations"]


def test_site_overlay_pins_an_image_digest(tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    docs = render_site(
        tmp_path,
        {"region": "cn-hangzhou", "image": f"registry.example.com/team/wanx@{digest}", "token": TOKEN},
    )
    container = by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"registry.example.com/team/wanx@{digest}"
