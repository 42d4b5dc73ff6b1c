"""Validate ``POST /prompt`` against the pinned node schema, answering in ComfyUI's 400 shape.

Classes missing from the trimmed schema are left to the backend (it validates again on dispatch, and a
refusal there ends the job with its ``node_errors``): the gateway must not refuse what ComfyUI would run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from wanx.jobs.validate import OUTPUT_CLASSES, Rejection, Validator, rejection
from wanx.workflows.check import Problem, check_graph
from wanx.workflows.schema import Schema, load_schema

__all__ = ["schema_validator"]

_UNKNOWN_CLASS = "unknown node class"
_NO_OUTPUT = "no output node"

# (start of the checker's message, ComfyUI's error type, ComfyUI's message)
_KINDS = (
    ("required input missing", "required_input_missing", "Required input is missing"),
    ("value ", "value_not_in_list", "Value not in list"),
    ("type mismatch", "return_type_mismatch", "Return type mismatch between linked nodes"),
    ("linked to", "bad_linked_input", "Bad linked input"),
)


def _error(problem: Problem) -> dict[str, Any]:
    kind, message = "invalid_input", "Failed to validate input"
    for start, comfy_kind, comfy_message in _KINDS:
        if problem.message.startswith(start):
            kind, message = comfy_kind, comfy_message
            break
    if "below the minimum" in problem.message:
        kind, message = "value_smaller_than_min", "Value smaller than min"
    elif "above the maximum" in problem.message:
        kind, message = "value_bigger_than_max", "Value bigger than max"
    details = f"{problem.input}: {problem.message}" if problem.input else problem.message
    return {"type": kind, "message": message, "details": details, "extra_info": {"input_name": problem.input}}


def _node_errors(problems: list[Problem], outputs: tuple[str, ...]) -> dict[str, Any]:
    grouped: dict[str, list[Problem]] = defaultdict(list)
    for problem in problems:
        grouped[problem.node_id].append(problem)
    return {
        node_id: {
            "errors": [_error(p) for p in found],
            "dependent_outputs": list(outputs),
            "class_type": found[0].class_type,
        }
        for node_id, found in grouped.items()
    }


def _is_output(node: dict[str, Any], schema: Schema, *, known: bool) -> bool:
    class_type = str(node.get("class_type", ""))
    if not known:
        return class_type in OUTPUT_CLASSES
    spec = schema.get(class_type)
    return spec is not None and spec.output_node


def schema_validator(schema: Schema | None = None) -> Validator:
    """A validator for ``JobService`` backed by ``wanx.workflows.check.check_graph``."""
    pinned = schema or load_schema()

    def validate(graph: Any) -> tuple[str, ...] | Rejection:
        if not isinstance(graph, dict) or not graph:
            return rejection("invalid_prompt", "Cannot execute because the prompt is empty or not an object")
        problems = check_graph(graph, pinned)
        unknown = {p.node_id for p in problems if p.message.startswith(_UNKNOWN_CLASS)}
        problems = [
            p for p in problems if p.node_id not in unknown and not (unknown and p.message.startswith(_NO_OUTPUT))
        ]
        graph_level = [p for p in problems if not p.node_id]
        if any(p.message.startswith(_NO_OUTPUT) for p in graph_level):
            return rejection("prompt_no_outputs", "Prompt has no outputs")
        if graph_level:
            return rejection("invalid_prompt", graph_level[0].message)
        outputs = tuple(n for n in graph if _is_output(graph[n], pinned, known=n not in unknown))
        if problems:
            return Rejection(
                type="prompt_outputs_failed_validation",
                message="Prompt outputs failed validation",
                node_errors=_node_errors(problems, outputs),
            )
        return outputs

    return validate
