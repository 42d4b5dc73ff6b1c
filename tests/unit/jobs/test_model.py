"""Prompt ids, body digests and the validator's ComfyUI shapes."""

from __future__ import annotations

import uuid

import pytest

from wanx.jobs.model import body_hash, is_prompt_id
from wanx.jobs.validate import Rejection, basic_validate


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param(str(uuid.uuid4()), True, id="uuid4"),
        pytest.param(str(uuid.uuid4()).upper(), False, id="upper"),
        pytest.param(uuid.uuid4().hex, False, id="no-hyphens"),
        pytest.param("x", False, id="text"),
        pytest.param(7, False, id="number"),
        pytest.param(None, False, id="none"),
    ],
)
def test_prompt_id_must_be_canonical_lowercase_uuid(value: object, ok: bool) -> None:
    assert is_prompt_id(value) is ok


def test_body_hash_ignores_key_order_only() -> None:
    assert body_hash({"a": 1, "b": [1, 2]}) == body_hash({"b": [1, 2], "a": 1})
    assert body_hash({"a": 1, "b": [1, 2]}) != body_hash({"a": 1, "b": [2, 1]})


def test_basic_validate_finds_outputs_or_rejects_in_comfyui_shape() -> None:
    graph = {"1": {"class_type": "LoadImage", "inputs": {}}, "2": {"class_type": "VHS_VideoCombine", "inputs": {}}}
    assert basic_validate(graph) == ("2",)
    refused = basic_validate({})
    assert isinstance(refused, Rejection)
    assert refused.body() == {
        "error": {"type": "invalid_prompt", "message": refused.message, "details": "", "extra_info": {}},
        "node_errors": {},
    }
