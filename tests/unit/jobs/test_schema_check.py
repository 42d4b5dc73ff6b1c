"""POST /prompt validation against the pinned schema: shipped graphs pass, broken copies get ComfyUI's 400."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from wanx.jobs.schema_check import schema_validator
from wanx.jobs.validate import Rejection

REPO = Path(__file__).resolve().parents[3]
SHIPPED = sorted((REPO / "workflows/api").glob("*.json"))


@pytest.fixture(scope="module")
def validate() -> Any:
    return schema_validator()


def _i2v() -> dict[str, Any]:
    return json.loads((REPO / "workflows/api/wanx-21.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_graphs_pass_with_their_output_nodes(validate: Any, path: Path) -> None:
    graph = json.loads(path.read_text())
    outputs = validate(graph)
    assert not isinstance(outputs, Rejection), outputs
    assert outputs and all(graph[n]["class_type"] in ("VHS_VideoCombine", "SaveImage", "PreviewImage") for n in outputs)


def test_missing_input_and_bad_value_are_node_errors(validate: Any) -> None:
    graph = _i2v()
    del graph["52"]["inputs"]["steps"]
    graph["48"]["inputs"]["model"] = "nope.safetensors"
    refused = validate(graph)
    assert isinstance(refused, Rejection)
    body = refused.body()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert set(body["node_errors"]) == {"48", "52"}
    steps = body["node_errors"]["52"]
    assert steps["class_type"] == "WanVideoSampler"
    assert steps["errors"][0]["type"] == "required_input_missing"
    assert steps["errors"][0]["extra_info"] == {"input_name": "steps"}
    assert steps["dependent_outputs"] == ["54"]
    assert body["node_errors"]["48"]["errors"][0]["type"] == "value_not_in_list"


def test_classes_outside_the_trimmed_schema_are_left_to_the_backend(validate: Any) -> None:
    graph = copy.deepcopy(_i2v())
    graph["99"] = {"class_type": "SomeCustomNode", "inputs": {"x": 1}}
    assert validate(graph) == ("54",)
    alone = {"1": {"class_type": "SomeCustomNode", "inputs": {}}}
    assert validate(alone) == ()


def test_graph_without_outputs_is_refused(validate: Any) -> None:
    refused = validate({"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}}})
    assert isinstance(refused, Rejection) and refused.type == "prompt_no_outputs"
