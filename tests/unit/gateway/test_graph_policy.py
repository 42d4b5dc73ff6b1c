"""POST /prompt for users: allow-listed classes only, no host paths; the shipped graphs all pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.servers import REPO
from wanx.gateway.graph_policy import check_prompt_body, host_path_problem
from wanx.gateway.policy import load_policy

PROMPT = load_policy().prompt
SHARED = REPO.parent / "shared" / "reference"
EDITING = [
    "VHS_LoadVideo", "LoadImage", "LoadImageMask", "ImageResizeKJv2", "INTConstant", "WanVaceToVideo",
    "TrimVideoLatent", "VAEDecode", "KSampler", "ModelSamplingSD3", "CLIPTextEncode", "CLIPLoader", "UNETLoader",
    "VAELoader", "VHS_VideoCombine", "PreviewImage", "Canny", "ImageToMask", "MaskToImage", "GrowMask",
    "SolidMask", "RepeatImageBatch", "GetImageSize",
]  # fmt: skip
PATH_LOADERS = ["VHS_LoadVideoPath", "VHS_LoadImagesPath", "VHS_LoadAudio", "LoadImagesFromFolderKJ",
                "SaveStringKJ", "SaveImageKJ", "VHS_LoadImages", "DiTBlockLoraLoader"]  # fmt: skip


def _body(graph: dict[str, object]) -> bytes:
    return json.dumps({"prompt": graph, "client_id": "c"}).encode()


def _graph_files() -> list[Path]:
    files = sorted((REPO / "workflows" / "api").glob("*.json"))
    files += [SHARED / f"{n}.seed.api.json" for n in ("wanx-21", "vace") if (SHARED / f"{n}.seed.api.json").is_file()]
    return files


@pytest.mark.parametrize("cls", EDITING)
def test_editing_classes_allowed(cls: str) -> None:
    assert cls in PROMPT.allowed_classes


@pytest.mark.parametrize("cls", PATH_LOADERS)
def test_path_loaders_not_allowed(cls: str) -> None:
    assert cls not in PROMPT.allowed_classes
    refusal, _ = check_prompt_body(_body({"7": {"class_type": cls, "inputs": {}}}), PROMPT)
    assert refusal is not None and refusal.status == 403
    assert (refusal.node_id, refusal.class_type) == ("7", cls)


def test_seed_graph_classes_allowed() -> None:
    recorded = json.loads((Path(__file__).parent / "data" / "seed_classes.json").read_text())["classes"]
    for name, classes in recorded.items():
        assert set(classes) <= PROMPT.allowed_classes, name


def test_every_shipped_graph_passes() -> None:
    files = _graph_files()
    if not files:
        pytest.skip("no workflows/api/*.json and no ../shared/reference seed graphs to check")
    for path in files:
        graph = json.loads(path.read_text())
        graph = graph.get("prompt", graph)
        used = {n["class_type"] for n in graph.values() if isinstance(n, dict) and "class_type" in n}
        assert used <= PROMPT.allowed_classes, f"{path.name}: {sorted(used - PROMPT.allowed_classes)}"
        refusal, _ = check_prompt_body(_body(graph), PROMPT)
        assert refusal is None, f"{path.name}: {refusal}"


@pytest.mark.parametrize(
    ("cls", "name", "value"),
    [
        ("VHS_VideoCombine", "filename_prefix", "/etc/cron.d/x"),
        ("VHS_VideoCombine", "filename_prefix", "../../custom_nodes/evil"),
        ("VHS_VideoCombine", "filename_prefix", "out\\..\\..\\x"),
        ("LoadImage", "image", "/etc/passwd"),
        ("LoadImage", "image", "~root/.ssh/id_rsa"),
        ("VHS_LoadVideo", "video", "C:\\Windows\\x.mp4"),
        ("VHS_LoadVideo", "video", "clips/../../secret.mp4"),
        ("UNETLoader", "unet_name", "../../../etc/shadow"),
        ("SaveImage", "filename_prefix", "/tmp/x"),
    ],
)
def test_host_paths_refused(cls: str, name: str, value: str) -> None:
    refusal, _ = check_prompt_body(_body({"12": {"class_type": cls, "inputs": {name: value}}}), PROMPT)
    assert refusal is not None
    assert (refusal.status, refusal.code, refusal.node_id, refusal.class_type) == (403, "host_path_refused", "12", cls)
    assert name in refusal.message


@pytest.mark.parametrize(
    ("cls", "name", "value"),
    [
        ("VHS_VideoCombine", "filename_prefix", "wanx/edit_"),
        ("LoadImage", "image", "example.png [input]"),
        ("CLIPTextEncode", "text", "/ a prompt with ../ dots and /slashes..."),
        ("VHS_LoadVideo", "video", "clips/a..b.mp4"),
    ],
)
def test_ordinary_values_pass(cls: str, name: str, value: str) -> None:
    refusal, _ = check_prompt_body(_body({"1": {"class_type": cls, "inputs": {name: value, "x": ["2", 0]}}}), PROMPT)
    assert refusal is None


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"prompt": []}', b'{"prompt": {"1": {"inputs": {}}}}', b'{"prompt": {"1": 5}}'],
)
def test_malformed_bodies_are_400(body: bytes) -> None:
    refusal, _ = check_prompt_body(body, PROMPT)
    assert refusal is not None and refusal.status == 400


def test_host_path_problem_plain_name() -> None:
    assert host_path_problem("a/b/c.png") is None
    assert host_path_problem("/a") is not None
