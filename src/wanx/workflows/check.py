"""Static checks of an API-format graph against node schemas: what ComfyUI would reject, found before it runs.

Rules: class exists; required inputs present; no unknown inputs; combo values allowed; numbers in range;
link targets exist and their output type fits the input; acyclic; at least one output node; every model
file named is in the lockfile. Known exceptions are explicit: VHS per-format widgets, upload-backed combos.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from wanx.workflows.schema import InputSpec, NodeSpec, Schema

__all__ = ["Problem", "check_graph", "is_link", "types_compatible"]

# The frontend serialises the upload button of upload-backed loaders into the API graph; ComfyUI ignores it.
_UPLOAD_WIDGET = "upload"


class _LockEntryLike(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def workflows(self) -> tuple[str, ...]: ...


class _LockfileLike(Protocol):
    @property
    def entries(self) -> tuple[_LockEntryLike, ...]: ...


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding; ``input`` is empty when the problem is about the node or the graph as a whole."""

    node_id: str
    class_type: str
    input: str
    message: str

    def __str__(self) -> str:
        where = f"node {self.node_id} ({self.class_type})" if self.node_id else "graph"
        return f"{where}{f' input {self.input!r}' if self.input else ''}: {self.message}"


def is_link(value: Any) -> bool:
    """An API-graph link is ``[source_node_id, output_index]``."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def types_compatible(output_type: str, input_type: str) -> bool:
    """ComfyUI's rule: equal, either side ``*``, or the comma-separated type sets overlap."""
    if output_type == input_type or "*" in (output_type, input_type):
        return True
    received = {t.strip() for t in output_type.split(",")}
    accepted = {t.strip() for t in input_type.split(",")}
    return bool(received & accepted)


def check_graph(
    graph: Mapping[str, Any], schema: Schema, *, lockfile: _LockfileLike | None = None, workflow: str | None = None
) -> list[Problem]:
    """Every problem found in ``graph``, in node order; an empty list means it passes.

    With ``lockfile``, every model file must be locked; with ``workflow`` too, its entry must list that workflow.
    """
    if not isinstance(graph, Mapping) or not graph:
        return [Problem("", "", "", "not an API-format graph (expected a non-empty object of node id -> node)")]
    problems: list[Problem] = []
    model_paths = (
        {e.path for e in lockfile.entries if workflow is None or workflow in e.workflows}
        if lockfile is not None
        else None
    )
    for node_id in sorted(graph, key=_node_order):
        problems.extend(_check_node(node_id, graph, schema, model_paths, workflow))
    problems.extend(_check_cycles(graph))
    if not any(_is_output(graph[n], schema) for n in graph):
        problems.append(Problem("", "", "", "no output node (expected a node such as VHS_VideoCombine or SaveImage)"))
    return problems


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)


def _spec(node: Any, schema: Schema) -> NodeSpec | None:
    return schema.get(node.get("class_type", "")) if isinstance(node, Mapping) else None


def _is_output(node: Any, schema: Schema) -> bool:
    spec = _spec(node, schema)
    return spec is not None and spec.output_node


def _check_node(
    node_id: str, graph: Mapping[str, Any], schema: Schema, model_paths: set[str] | None, workflow: str | None
) -> Iterable[Problem]:
    node = graph[node_id]
    if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str):
        yield Problem(node_id, "", "", "node has no class_type (expected {'class_type': ..., 'inputs': {...}})")
        return
    class_type = node["class_type"]
    spec = schema.get(class_type)
    if spec is None:
        yield Problem(node_id, class_type, "", "unknown node class (not in the schema of the pinned node packs)")
        return
    inputs = node.get("inputs", {})
    if not isinstance(inputs, Mapping):
        yield Problem(node_id, class_type, "", "inputs is not an object")
        return
    allowed = _allowed_inputs(spec, inputs)
    for name in inputs:
        if name not in allowed and not (name == _UPLOAD_WIDGET and any(i.upload for i in spec.inputs)):
            yield Problem(node_id, class_type, name, "unknown input for this class (renamed or removed upstream?)")
    for want in spec.inputs:
        if want.required and want.name not in inputs:
            yield Problem(node_id, class_type, want.name, "required input missing")
    for name, value in inputs.items():
        if name in allowed:
            yield from _check_value(node_id, class_type, allowed[name], value, graph, schema, model_paths, workflow)


def _allowed_inputs(spec: NodeSpec, inputs: Mapping[str, Any]) -> dict[str, InputSpec]:
    allowed = {i.name: i for i in spec.inputs}
    fmt = inputs.get("format")
    if spec.format_widgets and isinstance(fmt, str):
        allowed.update({w.name: w for w in spec.format_widgets.get(fmt, ())})
    return allowed


def _check_value(
    node_id: str,
    class_type: str,
    spec: InputSpec,
    value: Any,
    graph: Mapping[str, Any],
    schema: Schema,
    model_paths: set[str] | None,
    workflow: str | None,
) -> Iterable[Problem]:
    def problem(message: str) -> Problem:
        return Problem(node_id, class_type, spec.name, message)

    if is_link(value):
        yield from (problem(m) for m in _check_link(spec, value, graph, schema))
        return
    if not spec.is_widget:
        yield problem(f"expects a link from a {spec.type} output, got the value {value!r}")
        return
    message = _widget_error(spec, value)
    if message:
        yield problem(message)
    elif spec.models_folder and model_paths is not None and f"{spec.models_folder}/{value}" not in model_paths:
        yield problem(
            f"model file {spec.models_folder}/{value} is not in models.lock.yaml"
            f"{f' for workflow {workflow}' if workflow else ''} (add or fix its entry, or fix the name)"
        )


def _check_link(spec: InputSpec, link: list[Any], graph: Mapping[str, Any], schema: Schema) -> Iterable[str]:
    source_id, slot = link
    source = graph.get(source_id)
    if not isinstance(source, Mapping):
        yield f"linked to node {source_id}, which is not in the graph"
        return
    source_spec = _spec(source, schema)
    if source_spec is None:
        return  # reported on the source node itself
    if not 0 <= slot < len(source_spec.outputs):
        yield f"linked to output {slot} of node {source_id} ({source_spec.name}), which has {len(source_spec.outputs)}"
        return
    out_type = source_spec.outputs[slot].type
    if not types_compatible(out_type, spec.type):
        yield f"type mismatch: node {source_id} output {slot} is {out_type}, this input takes {spec.type}"


def _widget_error(spec: InputSpec, value: Any) -> str | None:
    if spec.type == "COMBO":
        if spec.upload:
            return None if isinstance(value, str) and value else f"expects an uploaded file name, got {value!r}"
        if value not in spec.options:
            shown = ", ".join(map(str, spec.options[:8])) + (" ..." if len(spec.options) > 8 else "")
            return f"value {value!r} not allowed (expected one of: {shown})"
        return None
    if spec.type == "BOOLEAN":
        return None if isinstance(value, bool) else f"expects true or false, got {value!r}"
    if spec.type == "STRING":
        return None if isinstance(value, str) else f"expects a string, got {value!r}"
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if spec.type == "INT" and not (numeric and float(value).is_integer()):
        return f"expects an integer, got {value!r}"
    if spec.type == "FLOAT" and not numeric:
        return f"expects a number, got {value!r}"
    if spec.min is not None and value < spec.min:
        return f"value {value} below the minimum {spec.min}"
    if spec.max is not None and value > spec.max:
        return f"value {value} above the maximum {spec.max}"
    return None


def _check_cycles(graph: Mapping[str, Any]) -> Iterable[Problem]:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node_id: str, path: list[str]) -> list[str] | None:
        state[node_id] = 1
        node = graph.get(node_id)
        inputs = node.get("inputs", {}) if isinstance(node, Mapping) else {}
        for value in inputs.values() if isinstance(inputs, Mapping) else ():
            if not is_link(value) or value[0] not in graph:
                continue
            if state.get(value[0]) == 1:
                return [*path, node_id, value[0]]
            if value[0] not in state and (cycle := visit(value[0], [*path, node_id])):
                return cycle
        state[node_id] = 2
        return None

    for node_id in sorted(graph, key=_node_order):
        if node_id not in state and (cycle := visit(node_id, [])):
            class_type = str(graph[cycle[-1]].get("class_type", "")) if isinstance(graph[cycle[-1]], Mapping) else ""
            yield Problem(cycle[-1], class_type, "", "cycle: " + " -> ".join(cycle[cycle.index(cycle[-1]) :]))
            return
