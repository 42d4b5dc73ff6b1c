"""The ``POST /prompt`` check for the user role: node classes from an allow-list, no host paths."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from wanx.gateway.policy import PromptPolicy

__all__ = ["GraphRefusal", "check_prompt_body", "host_path_problem"]

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class GraphRefusal:
    """Why a graph is refused; ``status`` is 400 for a malformed body, 403 for a forbidden node."""

    status: int
    code: str
    message: str
    node_id: str | None = None
    class_type: str | None = None


def host_path_problem(value: str) -> str | None:
    """Why ``value`` would reach outside ComfyUI's folders, or None when it is a plain relative name."""
    text = value.strip()
    if text.startswith(("/", "\\", "~")) or _DRIVE.match(text):
        return "is an absolute or home path"
    if any(part == ".." for part in re.split(r"[\\/]", text)):
        return "contains a '..' part"
    if "\x00" in text:
        return "contains a NUL byte"
    return None


def check_prompt_body(body: bytes, policy: PromptPolicy) -> tuple[GraphRefusal | None, dict[str, Any] | None]:
    """Parse and check a ``POST /prompt`` body; return (refusal or None, the parsed body)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return GraphRefusal(400, "prompt_invalid", f"POST /prompt: body is not JSON ({exc})"), None
    graph = data.get("prompt") if isinstance(data, dict) else None
    if not isinstance(graph, dict):
        return GraphRefusal(400, "prompt_invalid", 'POST /prompt: expected {"prompt": {node_id: node, ...}}'), None
    for node_id, node in graph.items():
        refusal = _check_node(str(node_id), node, policy)
        if refusal is not None:
            return refusal, data
    return None, data


def _check_node(node_id: str, node: Any, policy: PromptPolicy) -> GraphRefusal | None:
    cls = node.get("class_type") if isinstance(node, dict) else None
    if not isinstance(cls, str):
        return GraphRefusal(400, "prompt_invalid", f"POST /prompt: node {node_id}: no class_type", node_id)
    if cls not in policy.allowed_classes:
        return GraphRefusal(
            403,
            "node_not_allowed",
            f"POST /prompt: node {node_id} ({cls}): this node class is not on the gateway's allow-list; "
            "ask an administrator to add it to the policy or to run the graph",
            node_id,
            cls,
        )
    inputs = node.get("inputs", {})
    if not isinstance(inputs, dict):
        return GraphRefusal(400, "prompt_invalid", f"POST /prompt: node {node_id} ({cls}): inputs must be a mapping")
    for name, value in inputs.items():
        if isinstance(value, str) and policy.is_path_input(str(name)):
            problem = host_path_problem(value)
            if problem:
                return GraphRefusal(
                    403,
                    "host_path_refused",
                    f"POST /prompt: node {node_id} ({cls}): input {name!r} {problem}; "
                    "use a file name relative to ComfyUI's input or output folder",
                    node_id,
                    cls,
                )
    return None
