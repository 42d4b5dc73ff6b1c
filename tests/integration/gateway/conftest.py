"""A real gateway (in-process, on 127.0.0.1) in front of a real ComfyUI stand-in subprocess."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.servers import PYTHON, REPO, Process, free_port, run_gateway_app
from wanx.gateway import create_app, load_settings
from wanx.gateway.tokens import Role, add_token, revoke_token


@dataclass
class Gate:
    url: str
    upstream: str
    admin: str
    user: str
    revoked: str
    tokens_file: Path
    audit: io.StringIO
    comfy: Process
    comfy_root: Path

    def audit_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.getvalue().splitlines()]

    def secrets(self) -> tuple[str, str, str]:
        return (self.admin, self.user, self.revoked)


def start_comfy(root: Path, port: int | None = None, *, log: Path | None = None) -> Process:
    port = port or free_port()
    argv = [PYTHON, str(REPO / "tests/helpers/fake_comfy.py"), "--port", str(port), "--root", str(root)]
    proc = Process(argv, ready_url=f"http://127.0.0.1:{port}/system_stats", log=log)
    proc.start()
    return proc


@contextlib.contextmanager
def gateway_in_front(tmp: Path, **overrides: Any) -> Iterator[Gate]:
    tokens_file = tmp / "tokens.json"
    admin = add_token(tokens_file, name="ops", role=Role.ADMIN)
    user = add_token(tokens_file, name="alice", role=Role.USER)
    revoked = add_token(tokens_file, name="gone", role=Role.USER)
    revoke_token(tokens_file, "gone")
    root = tmp / "comfy"
    comfy = start_comfy(root)
    upstream = comfy.ready_url.removesuffix("/system_stats")
    settings = load_settings({}, upstream=upstream, tokens_file=tokens_file, **overrides)
    audit = io.StringIO()
    try:
        with run_gateway_app(lambda: create_app(settings, audit_stream=audit)) as url:
            yield Gate(url, upstream, admin, user, revoked, tokens_file, audit, comfy, root)
    finally:
        comfy.kill()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    with gateway_in_front(tmp_path) as g:
        yield g


@pytest.fixture(scope="module")
def shared_gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    """One gateway for the whole auth matrix (hundreds of requests; limits raised out of the way)."""
    with gateway_in_front(tmp_path_factory.mktemp("gate"), prompt_burst=1000, max_queued_per_token=1000) as g:
        yield g
