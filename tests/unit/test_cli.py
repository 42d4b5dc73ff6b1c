"""The root command: version, help and exit codes, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys

from wanx import __version__


def _wanx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wanx", *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    result = _wanx("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"wanx {__version__}"


def test_unknown_command_is_a_usage_error() -> None:
    result = _wanx("no-such-command")
    assert result.returncode == 2
    assert "no-such-command" in result.stderr
