"""`wanx workflows check|build|install|schema` as real subprocesses: exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.workflows.conftest import WORKFLOWS, shipped


def _wanx(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wanx", *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_check_passes_on_the_shipped_workflows() -> None:
    result = _wanx("workflows", "check")
    assert result.returncode == 0, result.stderr
    assert "ok api/vace-replace.json (without image)" in result.stderr
    assert "ok vace.json" in result.stderr


def test_check_names_node_class_and_input(tmp_path: Path) -> None:
    graph = shipped("vace-restyle")
    graph["17"]["inputs"]["strenght"] = graph["17"]["inputs"].pop("strength")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(graph))
    result = _wanx("workflows", "check", str(bad), str(WORKFLOWS / "vace.json"))
    assert result.returncode == 1
    assert "node 17 (WanVaceToVideo) input 'strenght': unknown input" in result.stderr
    assert "node 17 (WanVaceToVideo) input 'strength': required input missing" in result.stderr
    assert f"ok {WORKFLOWS / 'vace.json'}" in result.stderr  # UI files are converted and checked too
    assert "2 problem(s) in 1 of 2 graph checks" in result.stderr


def test_build_check_detects_drift_and_build_fixes_it(workflows_copy: Path) -> None:
    api = workflows_copy / "api" / "wanx-21.json"
    graph = json.loads(api.read_text())
    graph["52"]["inputs"]["steps"] = 30
    api.write_text(json.dumps(graph, indent=2))
    stale = _wanx("workflows", "build", "--check", "--workflows-dir", str(workflows_copy))
    assert stale.returncode == 1 and "out of date: wanx-21.json" in stale.stderr
    assert _wanx("workflows", "check", "--workflows-dir", str(workflows_copy)).returncode == 1
    assert _wanx("workflows", "build", "--workflows-dir", str(workflows_copy)).returncode == 0
    assert _wanx("workflows", "build", "--check", "--workflows-dir", str(workflows_copy)).returncode == 0
    ui = json.loads((workflows_copy / "wanx-21.json").read_text())
    sampler = next(n for n in ui["nodes"] if n["id"] == 52)
    assert sampler["widgets_values"][0] == 30


def test_install_reports_kept_user_files(tmp_path: Path) -> None:
    user = tmp_path / "user"
    first = _wanx("workflows", "install", "--user-dir", str(user))
    assert first.returncode == 0, first.stderr
    installed = user / "default" / "workflows"
    assert sorted(p.name for p in installed.iterdir()) == ["vace.json", "wanx-21.json"]
    assert (installed / "vace.json").read_text() == (WORKFLOWS / "vace.json").read_text()
    (installed / "vace.json").write_text("{}")
    again = _wanx("workflows", "install", "--user-dir", str(user))
    assert again.returncode == 0
    assert "kept your version" in again.stderr and "unchanged" in again.stderr


def test_schema_regenerates_from_a_dump(tmp_path: Path) -> None:
    shipped_schema = json.loads((WORKFLOWS.parent / "src/wanx/workflows/data/schema.json").read_text())
    # A dump made of the trimmed data itself lacks nothing the schema keeps only if classes round-trip:
    missing = tmp_path / "info.json"
    missing.write_text(json.dumps({"KSampler": {"input": {"required": {}}, "output": []}}))
    result = _wanx("workflows", "schema", "--from", str(missing), "-o", str(tmp_path / "out.json"))
    assert result.returncode == 1 and "object_info lacks" in result.stderr
    assert not (tmp_path / "out.json").exists()
    assert len(shipped_schema["classes"]) > 100
