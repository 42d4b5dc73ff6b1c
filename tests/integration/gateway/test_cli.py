"""`wanx token` and `wanx gateway` as a user runs them: real subprocesses, exit codes, streams."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.helpers.servers import PYTHON

pytestmark = pytest.mark.integration


def _wanx(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "wanx", *args], capture_output=True, text=True, timeout=60, env=env)


def test_token_new_list_revoke(tmp_path: Path) -> None:
    tokens = str(tmp_path / "tokens.json")
    made = _wanx("token", "new", "--name", "alice", "--role", "user", "--tokens-file", tokens)
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[-1]
    assert len(token) >= 43 and token not in made.stderr
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    listed = _wanx("token", "list", "--json", "--tokens-file", tokens)
    assert [json.loads(line)["name"] for line in listed.stdout.splitlines()] == ["alice"]
    assert token not in listed.stdout + (tmp_path / "tokens.json").read_text()
    again = _wanx("token", "new", "--name", "alice", "--tokens-file", tokens)
    assert again.returncode == 1 and "already exists" in again.stderr
    gone = _wanx("token", "revoke", "alice", "--tokens-file", tokens)
    assert gone.returncode == 0
    missing = _wanx("token", "revoke", "alice", "--tokens-file", tokens)
    assert missing.returncode == 1 and "not found" in missing.stderr and "wanx token list" in missing.stderr
    bad_role = _wanx("token", "new", "--name", "b", "--role", "root", "--tokens-file", tokens)
    assert bad_role.returncode == 2


def test_gateway_refuses_bad_settings(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nroles: {admin: {all: true}}\n")
    bad = _wanx("gateway", "--policy", str(policy), "--listen", "127.0.0.1:1")
    assert bad.returncode == 1 and "roles must define exactly admin and user" in bad.stderr
    listen = _wanx("gateway", "--listen", "nowhere")
    assert listen.returncode == 1 and "HOST:PORT" in listen.stderr
