"""A small world for fetch tests: generated weight files on a fake hub, a lock file that points at them, and the CLI."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.fake_hub import FakeHub
from tests.helpers.servers import REPO, free_port, run_app
from wanx.lockfile import LockEntry, Lockfile, Source, SourceKind, dump_lockfile

COMMIT = "c0ffee" + "0" * 34


@dataclass(frozen=True)
class Spec:
    """One weight file: its local path, its upstream repo and path, its workflows and its bytes."""

    path: str
    repo: str
    upstream: str
    workflows: tuple[str, ...]
    data: bytes


def make_specs() -> list[Spec]:
    """Three files of random bytes (a few hundred KiB to 1.5 MB), one renamed from its upstream name."""
    return [
        Spec("vae/a.safetensors", "org/one", "split/a_upstream.safetensors", ("one",), os.urandom(300_000)),
        Spec("text_encoders/wan2.1/b.safetensors", "org/one", "b.safetensors", ("one", "two"), os.urandom(200_000)),
        Spec("diffusion_models/c.safetensors", "org/two", "c.safetensors", ("two",), os.urandom(1_500_000)),
    ]


def lock_entry(spec: Spec, *, pinned: bool = True, hf_revision: str | None = COMMIT) -> LockEntry:
    sources = (
        Source(kind=SourceKind.HF, repo=spec.repo, path=spec.upstream, revision=hf_revision),
        Source(kind=SourceKind.HF_MIRROR),
        Source(kind=SourceKind.MODELSCOPE, repo=spec.repo, path=spec.upstream, revision="master"),
        Source(kind=SourceKind.URL, url="${WANX_MODELS_URL}/" + spec.path),
        Source(kind=SourceKind.LOCAL, dir="${WANX_MODELS_LOCAL_DIR}"),
    )
    return LockEntry(
        path=spec.path,
        workflows=spec.workflows,
        size=len(spec.data) if pinned else None,
        sha256=hashlib.sha256(spec.data).hexdigest() if pinned else None,
        sources=sources,
        unresolved=None if pinned else "not published upstream (test)",
    )


def write_lock(path: Path, entries: Sequence[LockEntry]) -> Path:
    dump_lockfile(Lockfile(entries=tuple(entries)), path)
    return path


def add_to_hub(hub: FakeHub, specs: Sequence[Spec]) -> None:
    for spec in specs:
        hub.add(spec.repo, spec.upstream, spec.data, commit=COMMIT, alias=spec.path)


@dataclass
class World:
    tmp: Path
    hub: FakeHub
    base: str
    specs: list[Spec]
    lockfile: Path
    models: Path
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, command: str, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "wanx",
            "models",
            command,
            "--lockfile",
            str(self.lockfile),
            "--models-dir",
            str(self.models),
            *args,
        ]

    def run(self, command: str, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(command, *args),
            env={**self.full_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )

    def spawn(self, command: str, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(command, *args),
            env={**self.full_env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            start_new_session=True,
        )

    def full_env(self) -> dict[str, str]:
        return {**os.environ, "COLUMNS": "200", **self.env}

    def target(self, spec: Spec) -> Path:
        return self.models / spec.path

    def gets(self) -> int:
        return sum(1 for r in self.hub.requests if r["method"] == "GET")


def dead_endpoint() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    return f"http://127.0.0.1:{free_port()}"


@contextlib.contextmanager
def world(tmp: Path, *, pinned: bool = True) -> Iterator[World]:
    """Every source kind points at one fake hub: HF_ENDPOINT, the hf mirror, ModelScope and WANX_MODELS_URL."""
    specs = make_specs()
    hub = FakeHub(tmp / "hub")
    add_to_hub(hub, specs)
    lockfile = write_lock(tmp / "models.lock.yaml", [lock_entry(s, pinned=pinned) for s in specs])
    with run_app(hub.make_app) as base:
        env = {
            "HF_ENDPOINT": base,
            "WANX_HF_MIRROR_ENDPOINT": base,
            "WANX_MODELSCOPE_ENDPOINT": base,
            "WANX_MODELS_URL": f"{base}/files",
        }
        yield World(tmp=tmp, hub=hub, base=base, specs=specs, lockfile=lockfile, models=tmp / "models", env=env)


def wait_for(predicate: object, *, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what} not reached within {timeout} s")
