"""The workflows shipped in the repository's ``workflows/`` folder: find, check, build and read them."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wanx.errors import GraphInvalid
from wanx.workflows.check import Problem, _LockfileLike, check_graph
from wanx.workflows.params import WorkflowSpec, default_values, fill_params, load_graph, load_workflows
from wanx.workflows.schema import Schema, trim_object_info
from wanx.workflows.ui import api_to_ui, ui_to_api

__all__ = [
    "check_file",
    "check_shipped",
    "default_root",
    "graph_classes",
    "read_graph",
    "regenerate_schema",
    "render_ui",
    "ui_files",
    "workflow_family",
]


def default_root() -> Path:
    """``workflows/`` of the source tree this package runs from, else ``<prefix>/share/wanx/workflows``."""
    source_tree = Path(__file__).resolve().parents[3] / "workflows"
    installed = Path(sys.prefix) / "share" / "wanx" / "workflows"
    return source_tree if source_tree.is_dir() or not installed.is_dir() else installed


def read_graph(path: Path, schema: Schema) -> dict[str, Any]:
    """An API graph from ``path``; a UI-format file (it has ``nodes``) is converted first."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GraphInvalid(f"{path}: cannot read JSON ({exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        return ui_to_api(data, schema)
    if not isinstance(data, dict):
        raise GraphInvalid(f"{path}: expected a JSON object (API graph or UI workflow)")
    return data


def check_file(path: Path, schema: Schema, *, lockfile: _LockfileLike | None = None) -> list[Problem]:
    return check_graph(read_graph(path, schema), schema, lockfile=lockfile)


def check_shipped(root: Path, schema: Schema, *, lockfile: _LockfileLike | None = None) -> dict[str, list[Problem]]:
    """Check every declared graph as shipped, filled with its defaults, and with each optional input left out."""
    results: dict[str, list[Problem]] = {}
    for spec in load_workflows(root).values():
        graph = load_graph(root, spec)
        family = workflow_family(spec.name)
        results[spec.graph] = check_graph(graph, schema, lockfile=lockfile, workflow=family)
        for label, variant in _variants(graph, spec):
            results[f"{spec.graph} ({label})"] = check_graph(variant, schema, lockfile=lockfile, workflow=family)
        if spec.ui is not None:
            results[spec.ui] = _ui_drift(root, spec, graph, schema)
    return results


def workflow_family(name: str) -> str:
    """The workflow a graph belongs to, as the lockfile names it: ``vace-replace`` -> ``vace``."""
    return "vace" if name.startswith("vace-") else name


def _variants(graph: Mapping[str, Any], spec: WorkflowSpec) -> list[tuple[str, dict[str, Any]]]:
    defaults = default_values(graph, spec)
    given = {k: v for k, v in defaults.items() if v is not None}
    out = [("defaults as parameters", fill_params(graph, spec, given))]
    for name, param in spec.params.items():
        if param.drop_nodes:
            without = {k: v for k, v in given.items() if k != name}
            out.append((f"without {name}", fill_params(graph, spec, without)))
    return out


def _ui_drift(root: Path, spec: WorkflowSpec, graph: Mapping[str, Any], schema: Schema) -> list[Problem]:
    assert spec.ui is not None
    path = root / spec.ui
    expected = render_ui(graph, schema)
    if not path.exists() or path.read_text(encoding="utf-8") != expected:
        return [Problem("", "", "", f"{spec.ui} differs from {spec.graph}; run 'wanx workflows build'")]
    return []


def render_ui(graph: Mapping[str, Any], schema: Schema) -> str:
    return json.dumps(api_to_ui(graph, schema), indent=2, ensure_ascii=False) + "\n"


def ui_files(root: Path, schema: Schema) -> dict[Path, str]:
    """Every UI file declared in params.yaml with the text it should have."""
    out: dict[Path, str] = {}
    for spec in load_workflows(root).values():
        if spec.ui is not None:
            out[root / spec.ui] = render_ui(load_graph(root, spec), schema)
    return out


def graph_classes(root: Path) -> set[str]:
    """Every node class the shipped graphs use."""
    return {
        str(node.get("class_type"))
        for spec in load_workflows(root).values()
        for node in load_graph(root, spec).values()
        if isinstance(node, dict)
    }


def regenerate_schema(info: Mapping[str, Any], *, keep: set[str], origin: str) -> dict[str, Any]:
    """The trimmed schema data for ``keep`` from a full ``/object_info``; missing classes are an error."""
    missing = sorted(keep - set(info))
    if missing:
        raise GraphInvalid(
            f"object_info lacks {len(missing)} class(es) the schema keeps: {', '.join(missing[:10])}",
            hint="Is every node pack installed and importing on that server? Check its startup log.",
        )
    return trim_object_info(info, classes=keep, origin=origin)
