"""deploy/k8s: every overlay and component combination built with `kubectl kustomize`, validated against
the Kubernetes schemas with kubernetes-validate (strict), and checked for the hardening rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.cloud.tf import REPO, ROOTS, load_root

K8S = REPO / "deploy/k8s"
KUBECTL = shutil.which("kubectl")
BUILDS = [
    "overlays/ack",
    "overlays/acs",
    *sorted(str(p.parent.relative_to(K8S)) for p in (K8S / "tests").glob("*/kustomization.yaml")),
]
COMPONENTS = ["nas-models", "ack-gpu", "acs-gpu", "ingress", "network-policy"]
# ACK and ACS versions in service; the oldest is the strictest about fields that exist.
KUBERNETES_VERSIONS = ["1.30.0", "1.33.0"]

needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl not found: install kubectl (any recent version) to build the kustomizations"
)


@cache
def build(path: str) -> tuple[dict[str, Any], ...]:
    assert KUBECTL
    result = subprocess.run(
        [KUBECTL, "kustomize", str(K8S / path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def find(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_specs(docs: tuple[dict[str, Any], ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod["spec"].get("initContainers", []), *pod["spec"]["containers"]]


# --- structure ----------------------------------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_is_a_documented_kustomize_component(component: str) -> None:
    folder = K8S / "components" / component
    assert (folder / "README.md").read_text(encoding="utf-8").startswith(f"# {component}")
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Component"
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"


@needs_kubectl
@pytest.mark.parametrize("path", BUILDS)
def test_build_validates_strictly(path: str) -> None:
    docs = build(path)
    assert {d["kind"] for d in docs} >= {"Namespace", "Deployment", "Job", "Service", "PersistentVolumeClaim", "Secret"}
    for version in KUBERNETES_VERSIONS:
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{path}: {doc['kind']}/{doc['metadata']['name']} invalid for {version}: {e.message}")


@needs_kubectl
def test_validation_would_catch_an_unknown_field() -> None:
    deployment = json.loads(json.dumps(find(build("overlays/acs"), "Deployment", "wanx")))
    deployment["spec"]["template"]["spec"]["containers"][0]["gpu"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


# --- hardening ----------------------------------------------------------------------------------


@needs_kubectl
@pytest.mark.parametrize("path", BUILDS)
def test_pods_are_hardened(path: str) -> None:
    for where, pod in pod_specs(build(path)):
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec["automountServiceAccountToken"] is False, where
        for c in containers(pod):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, f"{where}/{c['name']}"
            assert sc["capabilities"]["drop"] == ["ALL"], f"{where}/{c['name']}"
            assert sc["readOnlyRootFilesystem"] is True, f"{where}/{c['name']}"
            assert "privileged" not in sc
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{where}/{c['name']} {kind}"
            if c["name"] == "volume-permissions":
                # The one root step: chown two folders on NFS, which ignores fsGroup.
                assert sc["capabilities"]["add"] == ["CHOWN"]
                assert sc["runAsUser"] == 0
            else:
                assert "add" not in sc["capabilities"], f"{where}/{c['name']}"
                assert sc.get("runAsNonRoot", True) is True and sc.get("runAsUser", 1000) != 0


@needs_kubectl
@pytest.mark.parametrize("path", BUILDS)
def test_only_the_gateway_listens(path: str) -> None:
    docs = build(path)
    pod = find(docs, "Deployment", "wanx")["spec"]["template"]
    by_name = {c["name"]: c for c in pod["spec"]["containers"]}
    assert set(by_name) == {"comfyui", "gateway"}, "the gateway is a sidecar in the ComfyUI pod"
    assert "ports" not in by_name["comfyui"], "ComfyUI listens on loopback only"
    assert by_name["gateway"]["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert by_name["comfyui"]["args"] == ["comfyui"] and by_name["gateway"]["args"] == ["gateway"]
    assert by_name["comfyui"]["image"] == by_name["gateway"]["image"], "one image for every role"
    service = find(docs, "Service", "wanx")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


@needs_kubectl
@pytest.mark.parametrize("path", BUILDS)
def test_gateway_probes_and_token(path: str) -> None:
    docs = build(path)
    pod = find(docs, "Deployment", "wanx")["spec"]["template"]
    gateway = next(c for c in pod["spec"]["containers"] if c["name"] == "gateway")
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    token = next(e for e in gateway["env"] if e["name"] == "WANX_TOKEN")["valueFrom"]["secretKeyRef"]
    secret = find(docs, "Secret", "wanx-token")
    assert token["name"] == secret["metadata"]["name"], "the Secret's hashed name must reach the pod"
    assert token["key"] == "WANX_TOKEN"
    comfyui = next(c for c in pod["spec"]["containers"] if c["name"] == "comfyui")
    assert "127.0.0.1:8188" in " ".join(comfyui["livenessProbe"]["exec"]["command"])
    assert not any(e["name"] == "WANX_TOKEN" for e in comfyui["env"]), "ComfyUI never sees the token"


@needs_kubectl
@pytest.mark.parametrize("path", BUILDS)
def test_one_gpu_replica_and_models_before_comfyui(path: str) -> None:
    docs = build(path)
    deployment = find(docs, "Deployment", "wanx")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]
    comfyui = next(c for c in pod["spec"]["containers"] if c["name"] == "comfyui")
    assert comfyui["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert comfyui["resources"]["requests"]["nvidia.com/gpu"] == "1"
    init_names = [c["name"] for c in pod["spec"]["initContainers"]]
    assert init_names == ["volume-permissions", "models"]
    job = find(docs, "Job", "wanx-models-fetch")
    fetch = job["spec"]["template"]["spec"]["containers"][0]
    assert fetch["command"][:5] == ["wanx", "models", "fetch", "--models-dir", "/models"]
    assert "nvidia.com/gpu" not in fetch["resources"]["limits"], "the fetch Job needs no GPU"
    mounts = {m["mountPath"]: m for m in comfyui["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True and mounts["/models"]["subPath"] == "models"
    assert mounts["/data"]["subPath"] == "data"
    env = {e["name"]: e.get("value") for e in comfyui["env"]}
    assert env["WANX_MODELS_DIR"] == "/models" and env["WANX_DATA_DIR"] == "/data"


# --- platform components ------------------------------------------------------------------------


@needs_kubectl
@pytest.mark.parametrize("path", [p for p in BUILDS if p != "tests/base-only"])
def test_nas_volume_is_shared_and_retained(path: str) -> None:
    docs = build(path)
    pv = find(docs, "PersistentVolume", "wanx-storage")
    pvc = find(docs, "PersistentVolumeClaim", "wanx-storage")
    assert pv["spec"]["csi"]["driver"] == "nasplugin.csi.alibabacloud.com"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pvc["spec"]["accessModes"] == pv["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["storageClassName"] == pv["spec"]["storageClassName"]
    assert pvc["spec"]["selector"]["matchLabels"].items() <= pv["metadata"]["labels"].items()
    assert pv["spec"]["capacity"]["storage"] == pvc["spec"]["resources"]["requests"]["storage"]


@needs_kubectl
@pytest.mark.parametrize("path", [p for p in BUILDS if "acs" in p])
def test_acs_pods_ask_for_the_gpu_class_with_equal_requests_and_limits(path: str) -> None:
    docs = build(path)
    pod = find(docs, "Deployment", "wanx")["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert labels["alibabacloud.com/compute-class"] == "gpu"
    assert labels["alibabacloud.com/gpu-model-series"]
    assert labels["alibabacloud.com/compute-qos"] == "default"
    for where, spec in pod_specs(docs):
        assert spec["metadata"]["annotations"]["alibabacloud.com/extra-ephemeral-storage"] == "50Gi", where
        for c in containers(spec):
            assert c["resources"]["requests"] == c["resources"]["limits"], f"{where}/{c['name']}"
    assert "tolerations" not in pod["spec"]


@needs_kubectl
@pytest.mark.parametrize("path", [p for p in BUILDS if "ack" in p])
def test_ack_pod_tolerates_the_gpu_taint_and_the_job_does_not(path: str) -> None:
    docs = build(path)
    pod = find(docs, "Deployment", "wanx")["spec"]["template"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"]["tolerations"]
    assert "tolerations" not in find(docs, "Job", "wanx-models-fetch")["spec"]["template"]["spec"]
    assert "alibabacloud.com/compute-class" not in pod["metadata"]["labels"]


@needs_kubectl
@pytest.mark.parametrize("path", ["overlays/ack", "overlays/acs"])
def test_network_policy_denies_by_default_and_closes_metadata(path: str) -> None:
    docs = build(path)
    deny = find(docs, "NetworkPolicy", "wanx-default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ingress = find(docs, "NetworkPolicy", "wanx-gateway-ingress")["spec"]["ingress"]
    assert ingress == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    egress = find(docs, "NetworkPolicy", "wanx-egress")["spec"]["egress"]
    blocks = [t["ipBlock"] for rule in egress for t in rule.get("to", [])]
    assert all("100.100.100.200/32" in b["except"] for b in blocks) and blocks


@needs_kubectl
def test_ingress_routes_to_the_gateway_service() -> None:
    docs = build("tests/ack-ingress")
    ingress = find(docs, "Ingress", "wanx")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "wanx", "port": {"name": "http"}}
    assert ingress["spec"]["tls"], "the Ingress terminates TLS"
    assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600


@needs_kubectl
def test_overlays_leave_the_token_empty_and_the_site_sets_it() -> None:
    for path in ("overlays/ack", "overlays/acs"):
        assert find(build(path), "Secret", "wanx-token").get("data") in (None, {})
    site = build("tests/site-acs")
    assert "WANX_TOKEN" in find(site, "Secret", "wanx-token")["data"]
    assert find(site, "PersistentVolume", "wanx-storage")["spec"]["csi"]["volumeAttributes"]["server"].endswith(
        ".nas.aliyuncs.com"
    )
    for _, pod in pod_specs(site):
        for c in containers(pod):
            assert c["image"] == "registry.example.com/team/wanx:0.1.0"


# --- the site overlay terraform/acs prints ------------------------------------------------------


def _site_patch_paths() -> list[tuple[str, str]]:
    """(target kind, JSON-patch path) pairs from terraform/acs/site.tf."""
    patches = load_root(ROOTS["acs"]).locals["site_patches"]
    text = json.dumps(patches)
    kinds = re.findall(r'kind = \\"(\w+)\\"', text)
    paths = re.findall(r'path = \\"([^\\]+)\\"', text)
    assert len(kinds) == len(paths) >= 4, text
    return list(zip(kinds, paths, strict=True))


def _resolve(doc: Any, pointer: str) -> Any:
    for part in pointer.strip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


@needs_kubectl
@pytest.mark.parametrize("profile", ["ack", "acs"])
def test_site_patch_paths_point_at_what_they_mean(profile: str) -> None:
    docs = build(f"overlays/{profile}")
    expected = {
        "/spec/csi/volumeAttributes/server": "REPLACE-WITH-NAS-MOUNT-TARGET.nas.aliyuncs.com",
        "/spec/template/metadata/labels/alibabacloud.com~1gpu-model-series": "A10",
    }
    for kind, path in _site_patch_paths():
        if "gpu-model-series" in path and profile == "ack":
            continue
        target = next(d for d in docs if d["kind"] == kind)
        if path.endswith("/command"):
            container = _resolve(target, path.rsplit("/", 1)[0])
            assert container["name"] in ("models", "fetch"), f"{kind} {path} hits {container['name']}"
            assert _resolve(target, path)[:3] == ["wanx", "models", "fetch"]
        else:
            assert _resolve(target, path) == expected[path]
