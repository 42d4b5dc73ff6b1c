"""The ComfyUI stand-in itself speaks the protocol the other tests rely on."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest

pytestmark = pytest.mark.integration

GRAPH = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
    "2": {"class_type": "VHS_VideoCombine", "inputs": {"filename_prefix": "T", "images": ["1", 0]}},
}


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_job_runs_to_history_with_client_prompt_id(fake_comfy: str) -> None:
    prompt_id = str(uuid.uuid4())
    answer = _post(f"{fake_comfy}/api/prompt", {"prompt": GRAPH, "client_id": "c1", "prompt_id": prompt_id})
    assert answer["prompt_id"] == prompt_id
    deadline = time.monotonic() + 10
    while not (entry := _get(f"{fake_comfy}/history/{prompt_id}")) and time.monotonic() < deadline:
        time.sleep(0.05)
    record = entry[prompt_id]
    assert record["status"]["status_str"] == "success"  # type: ignore[index]
    video = record["outputs"]["2"]["gifs"][0]  # type: ignore[index]
    with urllib.request.urlopen(f"{fake_comfy}/view?filename={video['filename']}&type=output", timeout=10) as resp:
        assert len(resp.read()) == 32 * 64
