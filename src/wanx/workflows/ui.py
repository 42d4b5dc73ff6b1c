"""API-format graph -> UI-format graph (LiteGraph serialisation 0.4, what the web page opens), and back.

Widget values follow the schema's widget order; seed inputs carry the frontend's ``control_after_generate``
value after them, upload-backed loaders their ``upload`` value last, and VideoHelperSuite nodes a
name -> value object (VHS restores its widgets by name). Nodes are laid out in columns by depth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wanx.errors import GraphInvalid
from wanx.workflows.check import is_link
from wanx.workflows.schema import InputSpec, NodeSpec, Schema

__all__ = ["api_to_ui", "ui_to_api"]

UI_VERSION = 0.4
_COLUMN_WIDTH = 420
_GAP = 40
_SEED_CONTROL = "fixed"


def _is_vhs(class_type: str) -> bool:
    return class_type.startswith("VHS_")


def api_to_ui(graph: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """Build the UI graph for an API graph whose classes are all in ``schema``."""
    specs = {node_id: _spec(schema, node_id, node) for node_id, node in graph.items()}
    order = _topological(graph)
    depth = _depths(graph, order)
    links: list[list[Any]] = []
    out_links: dict[tuple[str, int], list[int]] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for node_id in order:
        node = graph[node_id]
        spec = specs[node_id]
        inputs: list[dict[str, Any]] = []
        for input_spec in _ui_inputs(spec, node["inputs"]):
            value = node["inputs"].get(input_spec.name)
            entry: dict[str, Any] = {"name": input_spec.name, "type": input_spec.type, "link": None}
            if input_spec.is_widget:
                entry["widget"] = {"name": input_spec.name}
            if is_link(value):
                link_id = len(links) + 1
                source_type = specs[value[0]].outputs[value[1]].type
                links.append([link_id, int(value[0]), value[1], int(node_id), len(inputs), source_type])
                out_links.setdefault((value[0], value[1]), []).append(link_id)
                entry["link"] = link_id
            inputs.append(entry)
        nodes[node_id] = {
            "id": int(node_id),
            "type": spec.name,
            "pos": [0, 0],
            "size": _size(spec, len(inputs)),
            "flags": {},
            "order": order.index(node_id),
            "mode": 0,
            "inputs": inputs,
            "outputs": [],
            "properties": {"Node name for S&R": spec.name},
            "widgets_values": _widgets_values(spec, node["inputs"]),
        }
        title = node.get("_meta", {}).get("title")
        if title:
            nodes[node_id]["title"] = title
    for node_id, ui_node in nodes.items():
        ui_node["outputs"] = [
            {"name": out.name, "type": out.type, "links": out_links.get((node_id, slot), []), "slot_index": slot}
            for slot, out in enumerate(specs[node_id].outputs)
        ]
    _layout(nodes, depth)
    ordered = [nodes[n] for n in sorted(nodes, key=int)]
    return {
        "last_node_id": max(int(n) for n in nodes),
        "last_link_id": len(links),
        "nodes": ordered,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.75, "offset": [0, 0]}},
        "version": UI_VERSION,
    }


def _spec(schema: Schema, node_id: str, node: Any) -> NodeSpec:
    if not node_id.isdigit():
        raise GraphInvalid(f"node id {node_id!r}: UI graphs need integer node ids")
    spec = schema.get(node.get("class_type", "")) if isinstance(node, Mapping) else None
    if spec is None:
        raise GraphInvalid(f"node {node_id}: class {node.get('class_type')!r} is not in the schema")
    return spec


def _ui_inputs(spec: NodeSpec, values: Mapping[str, Any]) -> list[InputSpec]:
    """Socket inputs, then widget inputs that are driven by a link (shown as sockets)."""
    sockets = [i for i in spec.inputs if not i.is_widget]
    linked = [i for i in spec.inputs if i.is_widget and is_link(values.get(i.name))]
    return sockets + linked


def _widget_value(spec: InputSpec, values: Mapping[str, Any]) -> Any:
    value = values.get(spec.name)
    if value is not None and not is_link(value):
        return value
    if spec.default is not None:
        return spec.default
    if spec.options:
        return spec.options[0]
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(spec.type, "")


def _widgets_values(spec: NodeSpec, values: Mapping[str, Any]) -> list[Any] | dict[str, Any]:
    widgets = [i for i in spec.inputs if i.is_widget]
    if _is_vhs(spec.name):
        fmt = values.get("format")
        extra = spec.format_widgets.get(fmt, ()) if isinstance(fmt, str) else ()
        return {w.name: _widget_value(w, values) for w in [*widgets, *extra]}
    out: list[Any] = []
    for widget in widgets:
        out.append(_widget_value(widget, values))
        if widget.control_after_generate:
            out.append(_SEED_CONTROL)
    if any(w.upload for w in widgets):
        out.append("image")  # the upload button's value; the frontend leaves it out of API graphs
    return out


def _topological(graph: Mapping[str, Any]) -> list[str]:
    done: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in seen:
            return
        seen.add(node_id)
        for value in graph[node_id].get("inputs", {}).values():
            if is_link(value) and value[0] in graph:
                visit(value[0])
        done.append(node_id)

    for node_id in sorted(graph, key=int):
        visit(node_id)
    return done


def _depths(graph: Mapping[str, Any], order: list[str]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for node_id in order:
        parents = [v[0] for v in graph[node_id].get("inputs", {}).values() if is_link(v)]
        depth[node_id] = 1 + max((depth[p] for p in parents), default=-1)
    return depth


def _size(spec: NodeSpec, sockets: int) -> list[int]:
    widgets = [i for i in spec.inputs if i.is_widget]
    multiline = sum(
        1 for w in widgets if w.type == "STRING" and w.name in ("text", "positive_prompt", "negative_prompt")
    )
    rows = max(sockets, len(spec.outputs))
    height = 30 + 22 * rows + 26 * len(widgets) + 90 * multiline + (240 if spec.output_node else 0)
    return [380 if multiline else 320, height]


def _layout(nodes: dict[str, dict[str, Any]], depth: Mapping[str, int]) -> None:
    next_y: dict[int, int] = {}
    for node_id in sorted(nodes, key=lambda n: (depth[n], int(n))):
        column = depth[node_id]
        y = next_y.get(column, 60)
        nodes[node_id]["pos"] = [60 + column * _COLUMN_WIDTH, y]
        next_y[column] = y + nodes[node_id]["size"][1] + _GAP


def ui_to_api(ui: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """The API graph a UI graph stands for (widget values by schema order, links by id); the inverse of api_to_ui."""
    links = {link[0]: link for link in ui.get("links", [])}
    graph: dict[str, Any] = {}
    for ui_node in ui.get("nodes", []):
        spec = schema.get(ui_node["type"])
        if spec is None:
            raise GraphInvalid(f"node {ui_node['id']}: class {ui_node['type']!r} is not in the schema")
        inputs: dict[str, Any] = _values_from_widgets(spec, ui_node.get("widgets_values", []))
        for slot in ui_node.get("inputs", []):
            link = links.get(slot.get("link"))
            if link is not None:
                inputs[slot["name"]] = [str(link[1]), link[2]]
        node: dict[str, Any] = {"inputs": inputs, "class_type": spec.name}
        if "title" in ui_node:
            node["_meta"] = {"title": ui_node["title"]}
        graph[str(ui_node["id"])] = node
    return graph


def _values_from_widgets(spec: NodeSpec, values: list[Any] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(values, dict):
        return dict(values)
    out: dict[str, Any] = {}
    queue = list(values)
    widgets = [i for i in spec.inputs if i.is_widget]
    for widget in widgets:
        if not queue:
            break
        out[widget.name] = queue.pop(0)
        if widget.control_after_generate and queue:
            queue.pop(0)
    return out
