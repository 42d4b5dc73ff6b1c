"""Installer pieces that need no git or pip: sources, requirement joining, model paths, the torchvision guard."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.servers import REPO
from wanx.comfylock import load_comfylock
from wanx.errors import ConfigError, InstallError
from wanx.install import guard_torchvision, joined_requirements, resolve_source, source_overrides_from_env
from wanx.install import write_extra_model_paths as write_paths

LOCK = load_comfylock(REPO / "comfyui.lock.yaml")
KJ = LOCK.node_packs[1]


def test_source_overrides_come_from_the_environment() -> None:
    environ = {"WANX_GIT_SOURCE_COMFYUI_KJNODES": "/srv/kj", "WANX_GIT_MIRROR": "https://m.example/", "PATH": "/b"}
    sources, mirror = source_overrides_from_env(environ)
    assert sources == {"COMFYUI_KJNODES": "/srv/kj"}
    assert mirror == "https://m.example/"
    assert source_overrides_from_env({"WANX_GIT_MIRROR": ""}) == ({}, None)


@pytest.mark.parametrize(
    ("sources", "mirror", "expected"),
    [
        pytest.param({}, None, "https://github.com/kijai/ComfyUI-KJNodes", id="upstream"),
        pytest.param({"COMFYUI_KJNODES": "/srv/kj.git"}, "https://m/", "/srv/kj.git", id="override-wins"),
        pytest.param(
            {"COMFYUI": "/srv/c"},
            "https://m.example/git/",
            "https://m.example/git/kijai/ComfyUI-KJNodes",
            id="mirror-url",
        ),
        pytest.param({}, "git@mirror:", "git@mirror:/kijai/ComfyUI-KJNodes", id="mirror-ssh"),
    ],
)
def test_resolve_source(sources: dict[str, str], mirror: str | None, expected: str) -> None:
    assert resolve_source(KJ, sources, mirror) == expected


def test_mirror_folder_accepts_bare_and_flat_layouts(tmp_path: Path) -> None:
    (tmp_path / "a/kijai/ComfyUI-KJNodes.git").mkdir(parents=True)
    assert resolve_source(KJ, {}, str(tmp_path / "a")) == str(tmp_path / "a/kijai/ComfyUI-KJNodes.git")
    (tmp_path / "b/ComfyUI-KJNodes").mkdir(parents=True)
    assert resolve_source(KJ, {}, str(tmp_path / "b")) == str(tmp_path / "b/ComfyUI-KJNodes")
    with pytest.raises(ConfigError, match="no clone of ComfyUI-KJNodes there") as caught:
        resolve_source(KJ, {}, str(tmp_path / "c"))
    assert "set WANX_GIT_SOURCE_COMFYUI_KJNODES" in caught.value.hint


def test_joined_requirements_drop_torch_and_keep_lines_apart(tmp_path: Path) -> None:
    comfy = tmp_path / "ComfyUI"
    (comfy / "custom_nodes").mkdir(parents=True)
    (comfy / "requirements.txt").write_text(
        "torch\ntorchsde\ntorchvision\ntorchaudio>=2\nTorch ; sys_platform=='x'\nav>=14.2.0"
    )
    for pack, text in zip(LOCK.node_packs, ("ftfy\npyloudnorm", "mss\nopencv-python", "opencv-python\n"), strict=True):
        (comfy / "custom_nodes" / pack.name).mkdir()
        (comfy / "custom_nodes" / pack.name / "requirements.txt").write_text(text)
    lines = joined_requirements(comfy, LOCK).splitlines()
    packages = [line for line in lines if line and not line.startswith("#")]
    assert packages == ["torchsde", "av>=14.2.0", "ftfy", "pyloudnorm", "mss", "opencv-python", "opencv-python"]
    assert f"# ComfyUI-KJNodes {KJ.commit}" in lines


def test_extra_model_paths_point_every_folder_at_the_models_dir(tmp_path: Path) -> None:
    models = tmp_path / "my models"
    data = yaml.safe_load(write_paths(tmp_path / "extra.yaml", models).read_text())
    assert list(data) == ["wanx"]
    section = data["wanx"]
    assert section["base_path"] == str(models)
    assert section["is_default"] is True
    for folder in ("diffusion_models", "text_encoders", "vae", "clip_vision"):
        assert section[folder] == f"{folder}/"


META = """import functools

import torch
import torch.library

# Ensure that torch.ops.torchvision is visible
import torchvision.extension  # noqa: F401


@torch.library.register_fake("torchvision::nms")
def meta_nms(dets, scores, iou_threshold):
    return dets


@torch.library.register_fake("torchvision::qnms")
def meta_qnms(dets, scores, iou_threshold):
    return dets
"""


def test_torchvision_guard_is_applied_once(tmp_path: Path) -> None:
    target = tmp_path / "torchvision" / "_meta_registrations.py"
    target.parent.mkdir()
    target.write_text(META)
    assert guard_torchvision(tmp_path) is True
    guarded = target.read_text()
    assert guarded.count("if torchvision.extension._has_ops() else lambda f: f)") == 2
    assert guarded.count("# wanx: CPU guard") == 2
    compile(guarded, str(target), "exec")
    assert guard_torchvision(tmp_path) is False
    assert target.read_text() == guarded


def test_torchvision_guard_refuses_an_unknown_file(tmp_path: Path) -> None:
    target = tmp_path / "torchvision" / "_meta_registrations.py"
    target.parent.mkdir()
    target.write_text(META.replace('"torchvision::qnms"', '"torchvision::other"'))
    with pytest.raises(InstallError, match="found 1"):
        guard_torchvision(tmp_path)
    assert "wanx" not in target.read_text()
