"""Parameters by name: declarations, parsing and ranges, filling targets, dropping optional inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.workflows.conftest import WORKFLOWS, shipped
from wanx.errors import GraphInvalid, ParamError
from wanx.workflows.check import check_graph
from wanx.workflows.params import default_values, fill_params, load_workflows, parse_value
from wanx.workflows.schema import Schema

SPECS = load_workflows(WORKFLOWS)
NAMES = ["prompt", "negative_prompt", "seed", "steps", "cfg", "shift", "denoise", "width", "height", "frames", "fps"]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_workflow_declares_the_common_parameters(name: str) -> None:
    assert set(NAMES) <= set(SPECS[name].params)


def test_wanx21_defaults_follow_the_product_documents() -> None:
    defaults = default_values(shipped("wanx-21"), SPECS["wanx-21"])
    assert {k: defaults[k] for k in ("steps", "cfg", "shift", "fps", "frames", "width", "height")} == {
        "steps": 25, "cfg": 6, "shift": 5, "fps": 16, "frames": 81, "width": 832, "height": 480,
    }  # fmt: skip
    assert shipped("wanx-21")["50"]["inputs"]["adjust_resolution"] is True
    assert "47" not in shipped("wanx-21")  # the orphaned compile-settings node is not shipped


def test_fill_writes_every_target(schema: Schema) -> None:
    spec = SPECS["vace-restyle"]
    graph = fill_params(
        shipped("vace-restyle"),
        spec,
        {"video": "clip.mp4", "image": "ref.png", "prompt": "neon city", "fps": 12, "steps": 8, "frames": 33},
    )
    assert graph["40"]["inputs"]["video"] == "clip.mp4"
    assert graph["18"]["inputs"]["image"] == "ref.png"
    assert graph["15"]["inputs"]["text"] == "neon city"
    assert graph["40"]["inputs"]["force_rate"] == 12 and graph["32"]["inputs"]["frame_rate"] == 12
    assert graph["24"]["inputs"]["steps"] == 8
    assert graph["40"]["inputs"]["frame_load_cap"] == 33
    assert check_graph(graph, schema) == []


def test_fill_does_not_touch_the_source() -> None:
    source = shipped("wanx-21")
    fill_params(source, SPECS["wanx-21"], {"image": "x.png", "steps": 3})
    assert source["52"]["inputs"]["steps"] == 25


def test_optional_file_left_out_removes_its_nodes(schema: Schema) -> None:
    graph = fill_params(shipped("vace-replace"), SPECS["vace-replace"], {"video": "v.mp4", "mask": "m.png"})
    assert "18" not in graph and "22" not in graph
    assert "reference_image" not in graph["17"]["inputs"]
    assert graph["17"]["inputs"]["control_masks"] == ["56", 0]
    assert check_graph(graph, schema) == []


@pytest.mark.parametrize(
    ("workflow", "values", "words"),
    [
        pytest.param("wanx-21", {"steps": 5}, "parameter image is required", id="required-file"),
        pytest.param("vace-replace", {"video": "v.mp4"}, "parameter mask is required", id="required-mask"),
        pytest.param("wanx-21", {"image": "a.png", "strength": 2}, "unknown parameter strength", id="unknown"),
        pytest.param(
            "wanx-21",
            {"image": "a.png", "frames": 80},
            "80 is not 4n+1 (expected 4n+1, e.g. 77 or 81)",
            id="frames-4n+1",
        ),
        pytest.param("vace-reference", {"image": "a.png", "width": 830}, "830 is not a multiple of 16", id="width-16"),
        pytest.param("wanx-21", {"image": "a.png", "denoise": 1.2}, "above the maximum 1", id="max"),
        pytest.param("wanx-21", {"image": "a.png", "steps": "many"}, "expected int", id="type"),
    ],
)
def test_bad_values_name_the_parameter(workflow: str, values: dict[str, object], words: str) -> None:
    with pytest.raises(ParamError, match=r"parameter|unknown") as info:
        fill_params(shipped(workflow), SPECS[workflow], values)  # type: ignore[arg-type]
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [("steps", "30", 30), ("cfg", "7.5", 7.5), ("prompt", "a cat", "a cat"), ("frames", "49", 49)],
)
def test_parse_value(name: str, raw: str, expected: object) -> None:
    assert parse_value(SPECS["wanx-21"].params[name], raw) == expected


def test_parse_value_rejects_text_for_numbers() -> None:
    with pytest.raises(ParamError, match="steps: 'ten' is not an integer"):
        parse_value(SPECS["wanx-21"].params["steps"], "ten")
    with pytest.raises(ParamError, match="frames: 50 is not 4n\\+1"):
        parse_value(SPECS["wanx-21"].params["frames"], "50")


def test_target_that_is_a_link_is_refused(workflows_copy: Path) -> None:
    text = (workflows_copy / "params.yaml").read_text().replace('targets: ["41.width"]', 'targets: ["17.width"]')
    (workflows_copy / "params.yaml").write_text(text)
    spec = load_workflows(workflows_copy)["vace-restyle"]
    with pytest.raises(GraphInvalid, match=r"targets 17\.width, which is a link"):
        fill_params(shipped("vace-restyle"), spec, {"video": "v.mp4", "width": 640})


def test_malformed_declarations_are_reported(workflows_copy: Path) -> None:
    (workflows_copy / "params.yaml").write_text(
        "version: 1\nworkflows:\n  x: {graph: a.json, params: {p: {type: blob, targets: []}}}\n"
    )
    with pytest.raises(GraphInvalid, match="workflow 'x': malformed"):
        load_workflows(workflows_copy)
    (workflows_copy / "params.yaml").write_text("version: 2\n")
    with pytest.raises(GraphInvalid, match="version: 1"):
        load_workflows(workflows_copy)
