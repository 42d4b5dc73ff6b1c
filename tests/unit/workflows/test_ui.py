"""UI-format graphs: committed files match the generator, round-trip to the API graphs, and are well formed."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from tests.unit.workflows.conftest import WORKFLOWS, shipped
from wanx.workflows.params import load_workflows
from wanx.workflows.schema import Schema
from wanx.workflows.shipped import render_ui, ui_files
from wanx.workflows.ui import api_to_ui, ui_to_api

UI_SOURCES = {spec.ui: spec.graph for spec in load_workflows(WORKFLOWS).values() if spec.ui}


def test_both_ui_workflows_are_declared() -> None:
    assert UI_SOURCES == {"wanx-21.json": "api/wanx-21.json", "vace.json": "api/vace-replace.json"}


@pytest.mark.parametrize("ui_name", sorted(UI_SOURCES))
def test_committed_ui_matches_the_generator(schema: Schema, ui_name: str) -> None:
    expected = ui_files(WORKFLOWS, schema)[WORKFLOWS / ui_name]
    assert (WORKFLOWS / ui_name).read_text(encoding="utf-8") == expected, "run 'wanx workflows build'"


@pytest.mark.parametrize("ui_name", sorted(UI_SOURCES))
def test_ui_round_trips_to_the_api_graph(schema: Schema, ui_name: str) -> None:
    ui = json.loads((WORKFLOWS / ui_name).read_text(encoding="utf-8"))
    source = json.loads((WORKFLOWS / UI_SOURCES[ui_name]).read_text(encoding="utf-8"))
    assert ui_to_api(ui, schema) == source


def test_vace_ui_has_every_input() -> None:
    ui = json.loads((WORKFLOWS / "vace.json").read_text(encoding="utf-8"))
    types = {node["type"] for node in ui["nodes"]}
    assert {
        "VHS_LoadVideo",
        "LoadImage",
        "LoadImageMask",
        "WanVaceToVideo",
        "TrimVideoLatent",
        "VHS_VideoCombine",
    } <= types
    vace = next(n for n in ui["nodes"] if n["type"] == "WanVaceToVideo")
    linked = {i["name"] for i in vace["inputs"] if i["link"] is not None}
    assert {"control_video", "control_masks", "reference_image", "length", "width", "height"} <= linked


def _links_consistent(ui: dict[str, Any]) -> None:
    nodes = {n["id"]: n for n in ui["nodes"]}
    for link_id, src, src_slot, dst, dst_slot, kind in ui["links"]:
        assert nodes[dst]["inputs"][dst_slot]["link"] == link_id
        assert link_id in nodes[src]["outputs"][src_slot]["links"]
        assert nodes[src]["outputs"][src_slot]["type"] == kind
    assert ui["last_link_id"] == len(ui["links"])
    assert ui["last_node_id"] == max(nodes)


@pytest.mark.parametrize("name", ["wanx-21", "vace-restyle", "vace-replace", "vace-reference"])
def test_links_and_layout(schema: Schema, name: str) -> None:
    graph = shipped(name)
    ui = api_to_ui(graph, schema)
    _links_consistent(ui)
    nodes = {n["id"]: n for n in ui["nodes"]}
    for link in ui["links"]:  # data flows left to right
        assert nodes[link[1]]["pos"][0] < nodes[link[3]]["pos"][0]
    columns: dict[int, list[dict[str, Any]]] = {}
    for node in ui["nodes"]:
        columns.setdefault(node["pos"][0], []).append(node)
    for column in columns.values():  # no overlaps inside a column
        column.sort(key=lambda n: n["pos"][1])
        for upper, lower in itertools.pairwise(column):
            assert upper["pos"][1] + upper["size"][1] <= lower["pos"][1]
    orders = sorted(n["order"] for n in ui["nodes"])
    assert orders == list(range(len(graph)))


def test_widget_values_follow_the_frontend_rules(schema: Schema) -> None:
    ui = api_to_ui(shipped("vace-replace"), schema)
    by_type = {n["type"]: n for n in ui["nodes"]}
    # KSampler: seed is followed by its control_after_generate value
    assert by_type["KSampler"]["widgets_values"] == [42, "fixed", 20, 4, "uni_pc", "simple", 1]
    assert by_type["LoadImage"]["widgets_values"] == ["example.png", "image"]
    assert by_type["LoadImageMask"]["widgets_values"] == ["mask.png", "red", "image"]
    # VideoHelperSuite restores widgets by name, per-format ones included
    combine = by_type["VHS_VideoCombine"]["widgets_values"]
    assert combine["format"] == "video/h264-mp4" and combine["crf"] == 19 and combine["pix_fmt"] == "yuv420p"
    assert by_type["VHS_LoadVideo"]["widgets_values"]["format"] == "Wan"
    # a widget driven by a link still has a placeholder value, and a socket marked as that widget
    vace = by_type["WanVaceToVideo"]
    assert vace["widgets_values"] == [832, 480, 81, 1, 1.0]
    length = next(i for i in vace["inputs"] if i["name"] == "length")
    assert length["widget"] == {"name": "length"} and length["type"] == "INT"


def test_titles_come_from_meta(schema: Schema) -> None:
    ui = api_to_ui(shipped("wanx-21"), schema)
    assert {n["id"]: n.get("title") for n in ui["nodes"]}[42] == "Input image"


def test_render_is_stable(schema: Schema) -> None:
    assert render_ui(shipped("wanx-21"), schema) == render_ui(shipped("wanx-21"), schema)
