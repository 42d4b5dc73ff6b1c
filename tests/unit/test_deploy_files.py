"""The compose files and the Dockerfile keep the runtime's promises (structure; the image test builds it)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.helpers.servers import REPO
from wanx.stack import GPU_TORCH_INDEX_URL, GPU_TORCH_SPEC, LOCAL_IMAGE


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader plus compose's ``!reset`` tag (an override that removes a key)."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: {"__reset__": True})


def _compose(name: str) -> dict[str, Any]:
    data = yaml.load((REPO / "deploy" / name).read_text(), Loader=_ComposeLoader)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    services = _compose("compose.yaml")["services"]
    assert isinstance(services, dict)
    return services


def test_models_run_once_before_comfyui(services: dict[str, Any]) -> None:
    assert services["models"]["command"] == ["fetch"]
    assert services["models"]["restart"] == "no"
    assert services["comfyui"]["depends_on"] == {"models": {"condition": "service_completed_successfully"}}
    assert services["comfyui"]["restart"] == "unless-stopped"
    assert services["comfyui"]["command"] == ["all"]


def test_only_the_gateway_port_is_published(services: dict[str, Any]) -> None:
    published = {name: svc.get("ports", []) for name, svc in services.items() if svc.get("ports")}
    assert published == {"comfyui": ["${WANX_BIND:-0.0.0.0}:${WANX_PORT:-8188}:8080"]}
    assert not any("expose" in svc or svc.get("network_mode") == "host" for svc in services.values())


def test_the_gpu_is_reserved(services: dict[str, Any]) -> None:
    devices = services["comfyui"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


def test_hardening_and_volumes(services: dict[str, Any]) -> None:
    for name in ("models", "comfyui"):
        svc = services[name]
        assert svc["image"] == f"${{WANX_IMAGE:-{LOCAL_IMAGE}}}"
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in svc["security_opt"]
        assert svc["user"] == "${WANX_UID:-1000}:${WANX_GID:-1000}"
    assert services["comfyui"]["volumes"] == [
        "${WANX_MODELS_DIR:-../var/models}:/models:ro",
        "${WANX_DATA_DIR:-../var/data}:/data",
    ]
    assert services["models"]["volumes"] == ["${WANX_MODELS_DIR:-../var/models}:/models"]
    assert services["comfyui"]["environment"]["WANX_TOKEN"].startswith("${WANX_TOKEN:?")
    assert "/healthz" in " ".join(services["comfyui"]["healthcheck"]["test"])


def test_cpu_override_drops_the_gpu() -> None:
    comfyui = _compose("compose.cpu.yaml")["services"]["comfyui"]
    assert comfyui["deploy"] == {"__reset__": True}
    assert comfyui["environment"] == {"WANX_CPU": "1"}


def _dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def test_dockerfile_defaults_to_a_cuda12_base_and_torch() -> None:
    text = _dockerfile()
    assert re.search(r"^ARG BASE_IMAGE=nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu", text, re.M)
    indexes = set(re.findall(r"^ARG TORCH_INDEX_URL=(\S+)$", text, re.M))
    assert indexes == {"https://download.pytorch.org/whl/cu128"}  # a cu12x index, in both stages
    assert len(set(re.findall(r'^ARG TORCH_SPEC="([^"]+)"$', text, re.M))) == 1
    assert re.search(r'^ARG SAGEATTENTION_REF=""$', text, re.M)  # SageAttention 2 from source: off by default


def test_dockerfile_runtime_promises() -> None:
    text = _dockerfile()
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, re.M)
    assert stages == ["base", "wanx", "sage", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 1000:1000$", runtime, re.M)
    assert re.search(r"^EXPOSE 8080$", runtime, re.M)
    assert "http://127.0.0.1:8080/healthz" in runtime.split("HEALTHCHECK", 1)[1]
    assert 'ENTRYPOINT ["/opt/wanx/scripts/entrypoint.sh"]' in runtime
    assert 'VOLUME ["/models", "/data"]' in runtime
    assert "/opt/wanx/scripts/install-comfyui.sh" in runtime
    assert text.count("--mount=type=secret,id=egress_ca") == 3  # every stage that runs pip


def test_dockerignore_is_an_allow_list_without_secrets() -> None:
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert ".env" not in allowed and not any(a.startswith(("var", ".git", ".venv")) for a in allowed)
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", _dockerfile(), re.M))
    sources = {part for line in copied for part in line.split()}
    assert sources <= allowed | {"src", "./src"}, sources - allowed


def test_no_docker_mode_installs_the_image_torch() -> None:
    text = _dockerfile()
    assert set(re.findall(r'^ARG TORCH_SPEC="([^"]+)"$', text, re.M)) == {GPU_TORCH_SPEC}
    assert set(re.findall(r"^ARG TORCH_INDEX_URL=(\S+)$", text, re.M)) == {GPU_TORCH_INDEX_URL}


def test_models_service_fetches_only_the_selected_workflows(services: dict[str, Any]) -> None:
    # The entrypoint's fetch role turns WANX_WORKFLOWS into --workflow flags (tests/integration/test_entrypoint.py).
    models = services["models"]
    assert models["command"] == ["fetch"]
    assert "entrypoint" not in models
    assert models["environment"]["WANX_WORKFLOWS"] == "${WANX_WORKFLOWS:-wanx-21,vace}"
