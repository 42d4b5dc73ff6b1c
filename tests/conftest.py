"""Shared fixtures: a clean environment for every test, free ports, and the ComfyUI stand-in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.servers import PYTHON, REPO, free_port, run_process

# Switches that point the test suite at optional real components (documented in docs/testing.md).
KEEP = frozenset({"WANX_COMFYUI_DIR", "WANX_SRC_DIR"})


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's wanx or Hugging Face settings (only the test switches pass)."""
    for name in list(os.environ):
        if name in KEEP:
            continue
        if name.startswith(("WANX_", "HF_", "HUGGING_FACE_", "MODELSCOPE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def fake_comfy(tmp_path: Path) -> Iterator[str]:
    """A ComfyUI stand-in in its own process on 127.0.0.1; yields its base URL."""
    port = free_port()
    root = tmp_path / "comfy"
    argv = [PYTHON, str(REPO / "tests/helpers/fake_comfy.py"), "--port", str(port), "--root", str(root)]
    with run_process(argv, ready_url=f"http://127.0.0.1:{port}/system_stats"):
        yield f"http://127.0.0.1:{port}"
