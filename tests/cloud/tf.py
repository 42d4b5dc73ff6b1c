"""Read the Terraform roots with python-hcl2, and render the user-data template like templatefile()."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
ROOTS = {"ecs": REPO / "terraform/ecs", "acs": REPO / "terraform/acs"}
USER_DATA = ROOTS["ecs"] / "templates/user_data.sh.tftpl"

_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)

# Sample values for the user-data template, shaped like what the variables' validations accept.
SAMPLE_USER_DATA_VARS = {
    "bundle_git_url": "https://git.example.com/ops/wanx.git",
    "bundle_git_ref": "v0.1.0",
    "image": "registry.cn-hangzhou.aliyuncs.com/team/wanx:0.1.0",
    "workflows": "wanx-21,vace",
    "token": "sample-token-0123456789abcdefghij",
    "gateway_port": "8188",
    "models_disk_id": "d-bp1abcdefghijk",
    "nvidia_driver_version": "550",
    "hf_endpoint": "https://hf-mirror.com",
    "china_mirrors": "1",
}


@dataclass(frozen=True, slots=True)
class Root:
    """The blocks of one Terraform root, merged across its .tf files."""

    path: Path
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    data: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    terraform: list[dict[str, Any]] = field(default_factory=list)


def find_terraform() -> str | None:
    """A terraform binary of version 1.9 or newer ($TERRAFORM, else PATH), or None."""
    binary = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not binary:
        return None
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull}
    out = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, env=env, check=False).stdout
    try:
        major, minor = (int(x) for x in json.loads(out)["terraform_version"].split(".")[:2])
    except (ValueError, KeyError):
        return None
    return binary if (major, minor) >= (1, 9) else None


def run_terraform(binary: str, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    return subprocess.run(
        [binary, f"-chdir={work}", *args, "-no-color"], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def load_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return dict(hcl2.load(f, serialization_options=_OPTIONS))


@cache
def load_root(path: Path) -> Root:
    """Parse every .tf file of a root once per test session (callers must not mutate the result)."""
    root = Root(path=path)
    for tf in sorted(path.glob("*.tf")):
        doc = load_file(tf)
        for block in doc.get("variable", []):
            root.variables.update(block)
        for block in doc.get("output", []):
            root.outputs.update(block)
        for block in doc.get("locals", []):
            root.locals.update({k: v for k, v in block.items() if k != "__comments__"})
        for kind, target in (("resource", root.resources), ("data", root.data)):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    target.extend((rtype, name, body) for name, body in named.items())
        root.terraform.extend(doc.get("terraform", []))
    return root


_TEMPLATE_TOKEN = re.compile(r"\$\$\{|%%\{|%\{|\$\{([^}]*)\}")


def template_names(text: str) -> set[str]:
    """Names interpolated in a Terraform template (escaped $${...} are shell, not template)."""
    return {m.group(1) for m in _TEMPLATE_TOKEN.finditer(text) if m.group(1) is not None}


def render_template(text: str, values: dict[str, str]) -> str:
    """Render a template that uses only ${name} interpolations, as templatefile() would."""

    def substitute(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "$${":
            return "${"
        if token == "%%{":
            return "%{"
        if token == "%{":
            raise ValueError("template directives (%{...}) are not supported by this renderer")
        name = m.group(1)
        if name not in values:
            raise KeyError(f"template refers to {name!r}, which has no value")
        return values[name]

    return _TEMPLATE_TOKEN.sub(substitute, text)


def render_user_data() -> str:
    return render_template(USER_DATA.read_text(encoding="utf-8"), SAMPLE_USER_DATA_VARS)


if __name__ == "__main__":
    # make lint-cloud: python -m tests.cloud.tf | shellcheck -
    sys.stdout.write(render_user_data())
