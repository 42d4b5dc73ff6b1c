"""terraform-docs style Inputs/Outputs tables for the roots' READMEs (terraform-docs itself is not
installable here). `python -m tests.cloud.tfdocs` rewrites the block between the markers."""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.cloud.tf import ROOTS, Root, load_root

BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"


def _hcl(value: Any) -> str:
    if isinstance(value, str):
        return value[2:-1] if value.startswith("${") and value.endswith("}") else value
    return json.dumps(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_docs(root: Root) -> str:
    lines = ["## Inputs", "", "| Name | Description | Type | Default | Required |", "|---|---|---|---|:---:|"]
    for name, body in sorted(root.variables.items()):
        has_default = "default" in body
        default = f"`{_cell(json.dumps(body['default']))}`" if has_default else "n/a"
        required = "no" if has_default else "yes"
        lines.append(
            f"| `{name}` | {_cell(body['description'])} | `{_cell(_hcl(body['type']))}` | {default} | {required} |"
        )
    lines += ["", "## Outputs", "", "| Name | Description | Sensitive |", "|---|---|:---:|"]
    for name, body in sorted(root.outputs.items()):
        sensitive = "yes" if body.get("sensitive") else "no"
        lines.append(f"| `{name}` | {_cell(body['description'])} | {sensitive} |")
    return "\n".join(lines)


def splice(readme: str, docs: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{docs}\n{END}{tail}"


if __name__ == "__main__":
    for root_path in ROOTS.values():
        readme_path = root_path / "README.md"
        readme = readme_path.read_text(encoding="utf-8")
        updated = splice(readme, render_docs(load_root(root_path)))
        if updated != readme:
            readme_path.write_text(updated, encoding="utf-8")
            sys.stderr.write(f"updated {readme_path}\n")
