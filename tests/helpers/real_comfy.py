"""Where the tests find a real ComfyUI at the pinned commits, and the mark that skips them without one.

An install made by ``wanx install --cpu`` (``ComfyUI/main.py`` and ``venv/bin/python`` under one prefix), found
through ``WANX_COMFYUI_DIR`` or ``${XDG_CACHE_HOME:-~/.cache}/wanx/comfyui``; docs/testing.md says how to make one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def comfyui_prefix() -> Path:
    explicit = os.environ.get("WANX_COMFYUI_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wanx" / "comfyui"


def find_comfyui() -> Path | None:
    prefix = comfyui_prefix()
    if (prefix / "ComfyUI" / "main.py").is_file() and (prefix / "venv" / "bin" / "python").exists():
        return prefix
    return None


COMFYUI = find_comfyui()
requires_comfyui = pytest.mark.skipif(
    COMFYUI is None,
    reason=f"no real ComfyUI at {comfyui_prefix()}: set WANX_COMFYUI_DIR, or install one with "
    "'wanx install --cpu --prefix ~/.cache/wanx/comfyui' (docs/testing.md)",
)
