"""Small request checks named by policy rules (everything except the /prompt graph check)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from multidict import MultiMapping

from wanx.gateway.graph_policy import host_path_problem

__all__ = ["clear_problem", "path_type_problem", "userdata_problem"]


def path_type_problem(query: MultiMapping[str]) -> str | None:
    """VHS runs ffmpeg on any server path when ``type=path``; every ``type`` value is checked."""
    if any(v.strip().lower() == "path" for v in query.getall("type", [])):
        return "type=path reads any file on the server; use type=input, output or temp"
    return None


def clear_problem(body: bytes) -> str | None:
    """``POST /queue`` and ``POST /history`` may delete listed items but not clear everything."""
    try:
        data = json.loads(body) if body else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "body is not JSON"
    if not isinstance(data, dict):
        return "body must be a JSON object"
    if data.get("clear"):
        return "clearing the whole queue or history is for administrators; delete your own items instead"
    return None


def userdata_problem(params: Sequence[tuple[str, str]], folders: Sequence[str]) -> str | None:
    """Writes under the user folder only for saved workflows (``workflows/...``) and the like."""
    for name, value in params:
        if host_path_problem(value) or not value.startswith(tuple(folders)):
            return f"{name} {value!r}: users may write only below {', '.join(folders)}"
    return None
