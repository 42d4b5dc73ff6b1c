"""scripts/entrypoint.sh: each role runs the right wanx commands, with a recording stand-in for wanx."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.servers import REPO

pytestmark = pytest.mark.integration

RECORDER = '#!/bin/sh\nprintf "%s\\n" "$*" >> "$WANX_CALLS"\n'


def run(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    fake = tmp_path / "wanx"
    fake.write_text(RECORDER)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    base = {"PATH": "/usr/bin:/bin", "WANX": str(fake), "WANX_CALLS": str(calls), "WANX_DATA_DIR": str(tmp_path / "d")}
    proc = subprocess.run(
        ["bash", str(REPO / "scripts/entrypoint.sh"), *args], env={**base, **env}, capture_output=True, text=True
    )
    return proc, calls.read_text().splitlines() if calls.exists() else []


def test_all_preloads_workflows_then_serves_both(tmp_path: Path) -> None:
    (tmp_path / "prefix/workflows").mkdir(parents=True)
    proc, calls = run(tmp_path, "all", WANX_PREFIX=str(tmp_path / "prefix"), WANX_CPU="1")
    assert proc.returncode == 0, proc.stderr
    data = tmp_path / "d"
    assert calls[0] == f"workflows install --user-dir {data}/user --workflows-dir {tmp_path}/prefix/workflows"
    assert calls[1] == (
        f"serve --prefix {tmp_path}/prefix --models-dir /models --data-dir {data} --port 8080 --no-workflows --cpu"
    )
    assert (data / "user").is_dir()


def test_default_role_is_all_and_gpus_pass_through(tmp_path: Path) -> None:
    proc, calls = run(tmp_path, WANX_GPUS="0,1", WANX_PORT="9090")
    assert proc.returncode == 0, proc.stderr
    assert calls[0].startswith("workflows install")
    assert calls[1].endswith("--port 9090 --no-workflows --gpus 0,1")


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        pytest.param("comfyui", "--no-workflows --only comfyui", id="comfyui"),
        pytest.param("gateway", "--no-workflows --only gateway", id="gateway"),
    ],
)
def test_split_roles(tmp_path: Path, role: str, expected: str) -> None:
    proc, calls = run(tmp_path, role)
    assert proc.returncode == 0, proc.stderr
    assert calls[-1].endswith(expected)
    assert (calls[0].startswith("workflows install")) == (role == "comfyui")


@pytest.mark.parametrize(
    ("workflows", "expected"),
    [
        pytest.param("", "models fetch", id="unset-means-all"),
        pytest.param("vace", "models fetch --workflow vace", id="one"),
        pytest.param("wanx-21, vace", "models fetch --workflow wanx-21 --workflow vace", id="two"),
    ],
)
def test_fetch_takes_workflows_from_the_environment(tmp_path: Path, workflows: str, expected: str) -> None:
    proc, calls = run(tmp_path, "fetch", WANX_WORKFLOWS=workflows)
    assert proc.returncode == 0, proc.stderr
    assert calls == [expected]


def test_fetch_passes_its_arguments(tmp_path: Path) -> None:
    proc, calls = run(tmp_path, "fetch", "--workflow", "vace")
    assert proc.returncode == 0, proc.stderr
    assert calls == ["models fetch --workflow vace"]


def test_unknown_role_exits_2(tmp_path: Path) -> None:
    proc, calls = run(tmp_path, "web")
    assert proc.returncode == 2
    assert "unknown role 'web' (expected all, comfyui, gateway or fetch)" in proc.stderr
    assert calls == []
