"""Checks ``POST /prompt`` makes before a job is journaled, answering with ComfyUI's own 400 shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OUTPUT_CLASSES", "Rejection", "Validator", "basic_validate", "rejection"]

# Output nodes of the two shipped workflows and of ComfyUI's core save/preview nodes; used only when no
# pinned schema is wired in to say which classes are output nodes.
OUTPUT_CLASSES = frozenset({"VHS_VideoCombine", "SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveVideo"})


@dataclass(frozen=True, slots=True)
class Rejection:
    """A ComfyUI validation failure: ``{"error": {...}, "node_errors": {...}}`` with HTTP 400."""

    type: str
    message: str
    details: str = ""
    node_errors: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        error = {"type": self.type, "message": self.message, "details": self.details, "extra_info": {}}
        return {"error": error, "node_errors": self.node_errors}


def rejection(kind: str, message: str, details: str = "") -> Rejection:
    return Rejection(type=kind, message=message, details=details)


# A validator returns the output node ids to execute, or why the graph is refused.
Validator = Callable[[Any], "tuple[str, ...] | Rejection"]


def basic_validate(graph: Any) -> tuple[str, ...] | Rejection:
    """The structural checks ComfyUI makes before looking at node classes."""
    if not isinstance(graph, dict) or not graph:
        return rejection("invalid_prompt", "Cannot execute because the prompt is empty or not an object")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return rejection(
                "invalid_prompt",
                f"Cannot execute because a node is missing the class_type property.: Node ID '#{node_id}'",
            )
    outputs = tuple(node_id for node_id, node in graph.items() if node["class_type"] in OUTPUT_CLASSES)
    if not outputs:
        return rejection("prompt_no_outputs", "Prompt has no outputs")
    return outputs
