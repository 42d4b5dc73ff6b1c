"""Workflow parameters by name (``workflows/params.yaml``): declarations, parsing, and filling them into a graph.

No client edits node ids: a parameter names its targets (``"52.steps"``), its type and range, and the
graph's current value is its default. Optional file parameters that are not given remove their nodes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from wanx.errors import GraphInvalid, ParamError
from wanx.workflows.check import is_link

__all__ = [
    "ParamSpec",
    "ParamType",
    "Target",
    "WorkflowSpec",
    "default_values",
    "fill_params",
    "load_graph",
    "load_workflows",
    "parse_value",
]

PARAMS_FILE = "params.yaml"
Value = str | int | float


class ParamType(StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class Target:
    node_id: str
    input: str

    def __str__(self) -> str:
        return f"{self.node_id}.{self.input}"


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter: where it goes and what values it takes (``offset``/``multiple_of`` express 4n+1)."""

    name: str
    type: ParamType
    targets: tuple[Target, ...]
    min: float | None = None
    max: float | None = None
    multiple_of: int | None = None
    offset: int = 0
    upload: str | None = None
    required: bool = False
    drop_nodes: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    """An API graph shipped in ``workflows/`` with its parameters and, optionally, the UI file built from it."""

    name: str
    graph: str
    ui: str | None
    params: Mapping[str, ParamSpec]


def load_workflows(root: Path) -> dict[str, WorkflowSpec]:
    """Read ``<root>/params.yaml``; raises ``GraphInvalid`` naming the entry that is malformed."""
    path = root / PARAMS_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise GraphInvalid(f"{path}: cannot read parameter declarations ({exc})") from exc
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("workflows"), dict):
        raise GraphInvalid(f"{path}: expected 'version: 1' and a 'workflows' mapping")
    return {name: _workflow(path, name, raw) for name, raw in data["workflows"].items()}


def _workflow(path: Path, name: str, raw: Any) -> WorkflowSpec:
    try:
        params = {p: _param(p, spec) for p, spec in raw["params"].items()}
        return WorkflowSpec(name=name, graph=str(raw["graph"]), ui=raw.get("ui"), params=params)
    except (KeyError, TypeError, ValueError) as exc:
        raise GraphInvalid(f"{path}: workflow {name!r}: malformed declaration ({exc})") from exc


def _param(name: str, raw: Mapping[str, Any]) -> ParamSpec:
    targets = []
    for text in raw["targets"]:
        node_id, _, input_name = str(text).partition(".")
        if not node_id or not input_name:
            raise ValueError(f"parameter {name!r}: target {text!r} is not '<node id>.<input>'")
        targets.append(Target(node_id, input_name))
    return ParamSpec(
        name=name,
        type=ParamType(raw["type"]),
        targets=tuple(targets),
        min=raw.get("min"),
        max=raw.get("max"),
        multiple_of=raw.get("multiple_of"),
        offset=int(raw.get("offset", 0)),
        upload=raw.get("upload"),
        required=bool(raw.get("required", False)),
        drop_nodes=tuple(str(n) for n in raw.get("drop_nodes", ())),
        help=str(raw.get("help", "")),
    )


def load_graph(root: Path, spec: WorkflowSpec) -> dict[str, Any]:
    """The API graph of ``spec`` as a fresh dict."""
    path = root / spec.graph
    try:
        graph = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GraphInvalid(f"{path}: cannot read the API graph ({exc})") from exc
    if not isinstance(graph, dict):
        raise GraphInvalid(f"{path}: expected an object of node id -> node")
    return graph


def parse_value(spec: ParamSpec, raw: str) -> Value:
    """Turn command-line text into a checked value for ``spec``."""
    if spec.type in (ParamType.STRING, ParamType.FILE):
        return raw
    try:
        value: Value = int(raw) if spec.type is ParamType.INT else float(raw)
    except ValueError as exc:
        raise ParamError(
            f"parameter {spec.name}: {raw!r} is not {'an integer' if spec.type is ParamType.INT else 'a number'}"
        ) from exc
    _check_range(spec, value)
    return value


def _check_range(spec: ParamSpec, value: Value) -> None:
    if isinstance(value, str):
        return
    if spec.min is not None and value < spec.min:
        raise ParamError(f"parameter {spec.name}: {value} is below the minimum {spec.min}")
    if spec.max is not None and value > spec.max:
        raise ParamError(f"parameter {spec.name}: {value} is above the maximum {spec.max}")
    if spec.multiple_of and (value - spec.offset) % spec.multiple_of:
        form = f"{spec.multiple_of}n+{spec.offset}" if spec.offset else f"a multiple of {spec.multiple_of}"
        below = int(value - (value - spec.offset) % spec.multiple_of)
        near = f"{below} or {below + spec.multiple_of}"
        raise ParamError(f"parameter {spec.name}: {value} is not {form} (expected {form}, e.g. {near})")


def default_values(graph: Mapping[str, Any], spec: WorkflowSpec) -> dict[str, Any]:
    """Each parameter's default: the value at its first target in the graph."""
    out: dict[str, Any] = {}
    for name, param in spec.params.items():
        first = param.targets[0]
        out[name] = graph.get(first.node_id, {}).get("inputs", {}).get(first.input)
    return out


def fill_params(graph: Mapping[str, Any], spec: WorkflowSpec, values: Mapping[str, Value]) -> dict[str, Any]:
    """A copy of ``graph`` with ``values`` written to their targets and absent optional files' nodes removed."""
    unknown = sorted(set(values) - set(spec.params))
    if unknown:
        raise ParamError(
            f"{spec.name}: unknown parameter {', '.join(unknown)} (expected one of: {', '.join(spec.params)})"
        )
    out = copy.deepcopy(dict(graph))
    for name, param in spec.params.items():
        if name in values:
            value = values[name]
            _check_type(param, value)
            _check_range(param, value)
            for target in param.targets:
                _set(out, spec, param, target, value)
        elif param.required:
            raise ParamError(f"{spec.name}: parameter {name} is required ({param.help or param.type.value})")
        elif param.drop_nodes:
            _drop(out, param.drop_nodes)
    return out


def _check_type(param: ParamSpec, value: Value) -> None:
    wanted: tuple[type, ...] = {
        ParamType.STRING: (str,),
        ParamType.FILE: (str,),
        ParamType.INT: (int,),
        ParamType.FLOAT: (int, float),
    }[param.type]
    if not isinstance(value, wanted) or isinstance(value, bool):
        raise ParamError(f"parameter {param.name}: expected {param.type.value}, got {value!r}")


def _set(graph: dict[str, Any], spec: WorkflowSpec, param: ParamSpec, target: Target, value: Value) -> None:
    node = graph.get(target.node_id)
    if not isinstance(node, dict) or target.input not in node.get("inputs", {}):
        raise GraphInvalid(f"{spec.name}: parameter {param.name} targets {target}, which is not in the graph")
    if is_link(node["inputs"][target.input]):
        raise GraphInvalid(f"{spec.name}: parameter {param.name} targets {target}, which is a link, not a value")
    node["inputs"][target.input] = value


def _drop(graph: dict[str, Any], node_ids: tuple[str, ...]) -> None:
    for node_id in node_ids:
        graph.pop(node_id, None)
    for node in graph.values():
        inputs = node.get("inputs", {})
        for name in [n for n, v in inputs.items() if is_link(v) and v[0] in node_ids]:
            del inputs[name]
