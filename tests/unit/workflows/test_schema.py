"""The trimmed schema: what trimming keeps, and that the shipped copy covers the shipped graphs."""

from __future__ import annotations

import json

import pytest

from tests.helpers.servers import REPO
from tests.unit.workflows.conftest import WORKFLOWS
from wanx.workflows.schema import Schema, schema_from_data, trim_object_info
from wanx.workflows.shipped import graph_classes

SHARED_INFO = REPO.parent / "shared" / "comfy" / "object_info.json"

RAW = {
    "Demo": {
        "input": {
            "required": {
                "seed": ["INT", {"default": 0, "min": 0, "max": 10, "tooltip": "dropped"}],
                "mode": [["a", "b"], {"default": "b"}],
                "new_combo": ["COMBO", {"options": ["x", "y"], "multiselect": False}],
                "image": ["IMAGE"],
            },
            "optional": {"strength": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.1}]},
            "hidden": {"unique_id": "UNIQUE_ID"},
        },
        "input_order": {"required": ["image", "seed", "mode", "new_combo"], "optional": ["strength"]},
        "output": ["IMAGE", "INT"],
        "output_name": ["IMAGE", "count"],
        "output_is_list": [False, True],
        "output_node": False,
        "description": "dropped",
    },
    "LoadImage": {
        "input": {"required": {"image": [["junk.png"], {"image_upload": True}]}},
        "output": ["IMAGE", "MASK"],
    },
}


def test_trim_keeps_structure_in_served_order() -> None:
    schema = schema_from_data(trim_object_info(RAW))
    demo = schema.classes["Demo"]
    assert [i.name for i in demo.inputs] == ["image", "seed", "mode", "new_combo", "strength"]
    seed = demo.inputs[1]
    assert (seed.type, seed.default, seed.min, seed.max, seed.control_after_generate) == ("INT", 0, 0, 10, True)
    assert demo.inputs[2].options == ("a", "b") and demo.inputs[3].options == ("x", "y")
    assert demo.inputs[4].required is False and demo.inputs[4].step == 0.1
    assert [(o.name, o.type, o.is_list) for o in demo.outputs] == [("IMAGE", "IMAGE", False), ("count", "INT", True)]
    image = schema.classes["LoadImage"].inputs[0]
    assert image.upload == "image" and image.options == ()  # the dumping server's files are not a rule


def test_shipped_schema_covers_every_shipped_class(schema: Schema) -> None:
    assert graph_classes(WORKFLOWS) <= set(schema.classes)
    combine = schema.classes["VHS_VideoCombine"]
    assert combine.output_node
    assert [w.name for w in combine.format_widgets["video/h264-mp4"]] == [
        "pix_fmt",
        "crf",
        "save_metadata",
        "trim_to_audio",
    ]
    assert schema.classes["VHS_LoadVideo"].input("video").upload == "video"  # type: ignore[union-attr]
    assert schema.classes["UNETLoader"].input("unet_name").models_folder == "diffusion_models"  # type: ignore[union-attr]


@pytest.mark.skipif(not SHARED_INFO.exists(), reason="needs ../shared/comfy/object_info.json beside the repository")
def test_shipped_schema_is_the_trim_of_the_pinned_dump(schema: Schema) -> None:
    data = json.loads((REPO / "src/wanx/workflows/data/schema.json").read_text())
    again = trim_object_info(json.loads(SHARED_INFO.read_text()), classes=data["classes"], origin=data["origin"])
    assert again == data
