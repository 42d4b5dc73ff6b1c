"""Drive the compose stack in ``deploy/``: build or pull the image, start, stop, wait for ``/readyz``."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wanx.doctor import Engine
from wanx.errors import StackCommandFailed, StackNotReady
from wanx.stack import LOCAL_IMAGE, StackConfig

__all__ = ["Stack", "wait_ready"]


@dataclass(frozen=True, slots=True)
class Stack:
    """The compose project: engine, compose files, ``.env`` and the environment compose runs with."""

    engine: Engine
    config: StackConfig
    env_file: Path
    cpu: bool = False
    environ: Mapping[str, str] | None = None  # base environment for the subprocesses (None: inherit)
    uid: int = 1000
    gid: int = 1000

    @property
    def compose_files(self) -> tuple[Path, ...]:
        deploy = self.config.root / "deploy"
        return (deploy / "compose.yaml", deploy / "compose.cpu.yaml") if self.cpu else (deploy / "compose.yaml",)

    def argv(self, *args: str) -> list[str]:
        """A compose command line for this project."""
        files = [part for f in self.compose_files for part in ("-f", str(f))]
        return [*self.engine.compose, *files, "--env-file", str(self.env_file), *args]

    def env(self) -> dict[str, str]:
        base = dict(self.environ) if self.environ is not None else {}
        return {**base, **self.config.compose_environ(), "WANX_UID": str(self.uid), "WANX_GID": str(self.gid)}

    def run(self, *args: str, what: str, capture: bool = False) -> str:
        """Run one compose command; raise ``StackCommandFailed`` naming ``what`` failed."""
        return _run(self.argv(*args), what=what, env=self.env(), capture=capture)

    def build_or_pull(self) -> str:
        """Pull ``WANX_IMAGE`` when set, else build the image from the Dockerfile; return what was done."""
        if self.config.image:
            _run([self.engine.cli, "pull", self.config.image], what=f"pulling {self.config.image}", env=self.env())
            return f"pulled {self.config.image}"
        root = self.config.root
        argv = [self.engine.cli, "build", "-t", LOCAL_IMAGE, "-f", str(root / "Dockerfile"), str(root)]
        _run(argv, what="building the image", env=self.env())
        return f"built {LOCAL_IMAGE}"

    def up(self) -> None:
        self.run("up", "-d", "--remove-orphans", what="starting the stack")

    def down(self) -> None:
        self.run("down", what="stopping the stack")


def _run(argv: Sequence[str], *, what: str, env: Mapping[str, str], capture: bool = False) -> str:
    try:
        result = subprocess.run(list(argv), env=dict(env), capture_output=capture, text=True, check=False)
    except OSError as e:
        raise StackCommandFailed(
            f"{argv[0]}: cannot run it while {what} ({e.strerror}).",
            hint="Check the container engine with: wanx doctor.",
        ) from e
    if result.returncode != 0:
        tail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
        raise StackCommandFailed(
            f"{what} failed: {' '.join(argv[:3])} ... exited with status {result.returncode}"
            + (f" ({tail[0]})" if tail else "")
            + ".",
            hint="Read the output above; `make logs` shows the containers' logs and `wanx doctor` checks the host.",
        )
    return result.stdout or ""


def wait_ready(
    url: str,
    *,
    timeout: float,
    interval: float = 2.0,
    on_wait: Callable[[float, str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Poll ``url`` until it answers 200; return the seconds waited or raise ``StackNotReady``."""
    start = clock()
    last = "no answer yet"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return clock() - start
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (OSError, ValueError) as e:
            last = str(getattr(e, "reason", e))
        elapsed = clock() - start
        if elapsed >= timeout:
            raise StackNotReady(
                f"{url}: not ready after {timeout:.0f} s (last answer: {last}).",
                hint="See what the containers say with `make logs`; ComfyUI's first start can take minutes "
                "(raise the limit with wanx up --timeout).",
            )
        if on_wait is not None:
            on_wait(elapsed, last)
        time.sleep(min(interval, max(0.0, timeout - elapsed)))
