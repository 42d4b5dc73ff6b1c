"""The checker on the shipped graphs and on deliberately broken copies: one case per kind of error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.servers import REPO
from tests.unit.workflows.conftest import shipped
from wanx.lockfile import load_lockfile
from wanx.workflows.check import Problem, check_graph, types_compatible
from wanx.workflows.schema import Schema
from wanx.workflows.shipped import workflow_family

Graph = dict[str, Any]


@pytest.mark.parametrize("name", ["wanx-21", "vace-restyle", "vace-replace", "vace-reference"])
def test_shipped_graphs_pass(schema: Schema, name: str) -> None:
    assert check_graph(shipped(name), schema) == []


def _set(node: str, key: str, value: Any) -> Callable[[Graph], None]:
    def edit(graph: Graph) -> None:
        graph[node]["inputs"][key] = value

    return edit


def _delete(node: str, key: str) -> Callable[[Graph], None]:
    def edit(graph: Graph) -> None:
        del graph[node]["inputs"][key]

    return edit


def _retype(node: str, class_type: str) -> Callable[[Graph], None]:
    def edit(graph: Graph) -> None:
        graph[node]["class_type"] = class_type

    return edit


def _drop_outputs(graph: Graph) -> None:
    del graph["32"]


# (graph, edit, expected node id, class, input, words in the message)
BROKEN = [
    pytest.param(
        "vace-replace",
        _retype("41", "ImageResizeKJv3"),
        "41",
        "ImageResizeKJv3",
        "",
        "unknown node class",
        id="unknown-class",
    ),
    pytest.param(
        "wanx-21",
        _delete("52", "steps"),
        "52",
        "WanVideoSampler",
        "steps",
        "required input missing",
        id="missing-required",
    ),
    pytest.param(
        "wanx-21",
        _set("50", "clip", ["44", 0]),
        "50",
        "WanVideoImageClipEncode",
        "clip",
        "unknown input",
        id="renamed-input",
    ),
    pytest.param(
        "vace-restyle",
        _set("24", "sampler_name", "uni_pc_fast"),
        "24",
        "KSampler",
        "sampler_name",
        "not allowed",
        id="combo-value",
    ),
    pytest.param(
        "vace-restyle", _set("24", "denoise", 1.5), "24", "KSampler", "denoise", "above the maximum 1.0", id="above-max"
    ),
    pytest.param(
        "vace-restyle", _set("24", "steps", 0), "24", "KSampler", "steps", "below the minimum 1", id="below-min"
    ),
    pytest.param(
        "vace-restyle", _set("24", "steps", 2.5), "24", "KSampler", "steps", "expects an integer", id="int-type"
    ),
    pytest.param("vace-restyle", _set("24", "cfg", "4"), "24", "KSampler", "cfg", "expects a number", id="float-type"),
    pytest.param(
        "vace-restyle", _set("15", "text", 7), "15", "CLIPTextEncode", "text", "expects a string", id="string-type"
    ),
    pytest.param(
        "vace-replace",
        _set("51", "tapered_corners", 1),
        "51",
        "GrowMask",
        "tapered_corners",
        "true or false",
        id="bool-type",
    ),
    pytest.param(
        "vace-restyle",
        _set("24", "model", ["99", 0]),
        "24",
        "KSampler",
        "model",
        "not in the graph",
        id="dangling-link",
    ),
    pytest.param(
        "vace-restyle", _set("24", "model", ["27", 3]), "24", "KSampler", "model", "which has 1", id="bad-slot"
    ),
    pytest.param(
        "vace-restyle",
        _set("24", "model", ["14", 0]),
        "24",
        "KSampler",
        "model",
        "VAE, this input takes MODEL",
        id="type-mismatch",
    ),
    pytest.param(
        "vace-restyle",
        _set("17", "length", ["40", 0]),
        "17",
        "WanVaceToVideo",
        "length",
        "IMAGE, this input takes INT",
        id="widget-link-type",
    ),
    pytest.param(
        "vace-restyle",
        _set("24", "model", "model.safetensors"),
        "24",
        "KSampler",
        "model",
        "expects a link",
        id="value-for-socket",
    ),
    pytest.param(
        "vace-restyle", _set("27", "model", ["30", 0]), "27", "ModelSamplingSD3", "model", "LATENT", id="cycle-type"
    ),
    pytest.param(
        "wanx-21",
        _set("54", "crf", 101),
        "54",
        "VHS_VideoCombine",
        "crf",
        "above the maximum 100",
        id="vhs-format-widget-range",
    ),
    pytest.param(
        "wanx-21",
        _set("54", "format", "video/ProRes"),
        "54",
        "VHS_VideoCombine",
        "crf",
        "unknown input",
        id="vhs-widget-of-other-format",
    ),
    pytest.param("vace-restyle", _drop_outputs, "", "", "", "no output node", id="no-output"),
]


@pytest.mark.parametrize(("name", "edit", "node_id", "class_type", "input_name", "words"), BROKEN)
def test_broken_copy_is_caught(
    schema: Schema, name: str, edit: Callable[[Graph], None], node_id: str, class_type: str, input_name: str, words: str
) -> None:
    graph = shipped(name)
    edit(graph)
    problems = check_graph(graph, schema)
    matching = [p for p in problems if (p.node_id, p.class_type, p.input) == (node_id, class_type, input_name)]
    assert matching, problems
    assert words in matching[0].message
    assert node_id in str(matching[0])


def test_cycle_is_reported(schema: Schema) -> None:
    graph = shipped("vace-restyle")
    graph["42"]["inputs"]["image"] = ["42", 0]  # Canny feeding itself
    problems = check_graph(graph, schema)
    assert any(p.message.startswith("cycle: 42 -> 42") for p in problems), problems


def test_longer_cycle_is_reported(schema: Schema) -> None:
    graph = shipped("vace-replace")
    graph["51"]["inputs"]["mask"] = ["56", 0]  # mask chain loops back on itself: 51 -> 52 -> 53 -> 55 -> 56 -> 51
    problems = check_graph(graph, schema)
    assert [p for p in problems if p.message.startswith("cycle:")], problems


def test_upload_backed_combos_take_any_uploaded_name(schema: Schema) -> None:
    graph = shipped("vace-replace")
    graph["40"]["inputs"]["video"] = "my clip (3).mov"
    graph["18"]["inputs"]["image"] = "sub/ref.webp"
    graph["50"]["inputs"]["image"] = "mask.png"
    assert check_graph(graph, schema) == []
    graph["40"]["inputs"]["video"] = ""
    assert [p.input for p in check_graph(graph, schema)] == ["video"]


def test_not_a_graph(schema: Schema) -> None:
    assert check_graph({}, schema)[0].message.startswith("not an API-format graph")
    problems = check_graph({"1": {"inputs": {}}}, schema)
    assert problems[0] == Problem("1", "", "", problems[0].message)
    assert "class_type" in problems[0].message


@dataclass(frozen=True)
class _Entry:
    path: str


@dataclass(frozen=True)
class _Lock:
    entries: tuple[_Entry, ...]


def test_model_files_must_be_locked(schema: Schema) -> None:
    graph = shipped("vace-restyle")
    complete = _Lock(
        (
            _Entry("diffusion_models/wan21_vace_1_3_b.safetensors"),
            _Entry("text_encoders/umt5_xxl_fp8_e4m3fn.safetensors"),
            _Entry("vae/wan21_vace_vae.safetensors"),
        )
    )
    assert check_graph(graph, schema, lockfile=complete) == []
    partial = _Lock(complete.entries[:2])
    problems = check_graph(graph, schema, lockfile=partial)
    assert [(p.node_id, p.class_type, p.input) for p in problems] == [("14", "VAELoader", "vae_name")]
    assert "vae/wan21_vace_vae.safetensors is not in models.lock.yaml" in problems[0].message


@pytest.mark.parametrize(
    ("out", "into", "ok"),
    [
        pytest.param("IMAGE", "IMAGE", True, id="same"),
        pytest.param("IMAGE", "MASK", False, id="different"),
        pytest.param("*", "MASK", True, id="any-output"),
        pytest.param("LATENT", "*", True, id="any-input"),
        pytest.param("INT", "FLOAT,INT", True, id="multi-input"),
        pytest.param("IMAGE,LATENT", "LATENT", True, id="multi-output-overlap"),
        pytest.param("IMAGE,LATENT", "MASK,INT", False, id="multi-no-overlap"),
    ],
)
def test_types_compatible(out: str, into: str, ok: bool) -> None:
    assert types_compatible(out, into) is ok


def test_shipped_graphs_against_the_real_lockfile(schema: Schema, tmp_path: Path) -> None:
    lock = load_lockfile(REPO / "models.lock.yaml")
    for name in ("wanx-21", "vace-restyle", "vace-replace", "vace-reference"):
        assert check_graph(shipped(name), schema, lockfile=lock, workflow=workflow_family(name)) == []
    # an entry that does not list the workflow using it would be skipped by a per-workflow fetch
    text = (REPO / "models.lock.yaml").read_text()
    edited = tmp_path / "models.lock.yaml"
    entry = "- path: vae/wan21_vace_vae.safetensors\n  workflows: "
    assert entry + "[vace]" in text
    edited.write_text(text.replace(entry + "[vace]", entry + "[wanx-21]"))
    problems = check_graph(shipped("vace-replace"), schema, lockfile=load_lockfile(edited), workflow="vace")
    assert [(p.node_id, p.input) for p in problems] == [("14", "vae_name")]
    assert "not in models.lock.yaml for workflow vace" in problems[0].message
