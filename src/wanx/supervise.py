"""A small process supervisor, and `serve`: ComfyUI (one per GPU) and the gateway as supervised processes.

Children run in their own process groups; a crash is restarted with exponential backoff, a child that keeps
crashing stops everything with its exit code, and SIGTERM/SIGINT are forwarded so the stack stops cleanly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from wanx.errors import ConfigError, InstallError
from wanx.install import RUNTIME_ENV, write_extra_model_paths

__all__ = [
    "ProcessSpec",
    "RestartPolicy",
    "ServeSettings",
    "Supervisor",
    "build_specs",
    "default_prefix",
    "serve",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One supervised command; ``env`` is its whole environment (empty: inherit the supervisor's)."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Restart with backoff ``initial * 2**n`` up to ``maximum`` seconds; ``n`` resets after ``stable`` s of uptime.

    More than ``max_restarts`` crashes within ``window`` seconds stops the whole stack (a crash loop is better
    reported than hidden). ``stop_timeout`` is how long children get after SIGTERM before SIGKILL.
    """

    initial: float = 1.0
    maximum: float = 30.0
    stable: float = 60.0
    max_restarts: int = 5
    window: float = 300.0
    stop_timeout: float = 20.0


@dataclass
class _Child:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None
    failures: int = 0
    crashes: list[float] = field(default_factory=list)


class Supervisor:
    """Run ``specs`` until stopped; ``run()`` returns 0 after a requested stop, else the failing child's code."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not specs:
            raise ConfigError("supervisor: nothing to run")
        self.policy = policy or RestartPolicy()
        self._children = [_Child(spec) for spec in specs]
        self._clock = clock
        self._stop = threading.Event()
        self._stop_signal: int | None = None

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask the run loop to stop all children (thread- and signal-safe)."""
        self._stop_signal = signum
        self._stop.set()

    def run(self) -> int:
        """Start every child and supervise them; installs SIGTERM/SIGINT handlers when on the main thread."""
        restore = self._install_handlers()
        try:
            for child in self._children:
                self._start(child)
            code = self._loop()
        finally:
            self._terminate_all()
            restore()
        return code

    # ---------------------------------------------------------------- internals

    def _loop(self) -> int:
        while not self._stop.wait(0.1):
            now = self._clock()
            for child in self._children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        self._start(child)
                    continue
                assert child.proc is not None
                code = child.proc.poll()
                if code is None:
                    continue
                if self._stop.is_set():
                    break
                giving_up = self._record_crash(child, code, now)
                if giving_up is not None:
                    return giving_up
        return 0

    def _record_crash(self, child: _Child, code: int, now: float) -> int | None:
        policy = self.policy
        uptime = now - child.started
        child.failures = 0 if uptime >= policy.stable else child.failures + 1
        child.crashes = [t for t in child.crashes if now - t < policy.window] + [now]
        if len(child.crashes) > policy.max_restarts:
            log.error(
                "%s exited with %s; %d crashes in %.0f s, giving up",
                child.spec.name,
                code,
                len(child.crashes),
                policy.window,
                extra={"event": "supervise.giveup", "child": child.spec.name, "exit_code": code},
            )
            return code if code > 0 else 1 if code == 0 else 128 - code
        delay = min(policy.maximum, policy.initial * 2 ** max(0, child.failures - 1))
        log.warning(
            "%s exited with %s after %.1f s; restarting in %.1f s",
            child.spec.name,
            code,
            uptime,
            delay,
            extra={"event": "supervise.restart", "child": child.spec.name, "exit_code": code, "delay_s": delay},
        )
        child.proc = None
        child.restart_at = now + delay
        return None

    def _start(self, child: _Child) -> None:
        spec = child.spec
        try:
            child.proc = subprocess.Popen(
                spec.argv, env=dict(spec.env) if spec.env else None, cwd=spec.cwd, start_new_session=True
            )
        except OSError as exc:
            raise InstallError(f"{spec.name}: cannot start {spec.argv[0]} ({exc.strerror})") from exc
        child.started = self._clock()
        child.restart_at = None
        log.info(
            "%s started (pid %d)",
            spec.name,
            child.proc.pid,
            extra={"event": "supervise.start", "child": spec.name, "pid": child.proc.pid},
        )

    def _terminate_all(self) -> None:
        running = [c.proc for c in self._children if c.proc is not None and c.proc.poll() is None]
        sig = self._stop_signal if self._stop_signal in (signal.SIGTERM, signal.SIGINT) else signal.SIGTERM
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        deadline = time.monotonic() + self.policy.stop_timeout
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for child in self._children:
            if child.proc is not None:
                # Reap grandchildren a child left behind in its group.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGKILL)

    def _install_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.stop(signum)

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore


# ---------------------------------------------------------------- serve: the wanx stack


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """The no-Docker stack. ComfyUI always listens on 127.0.0.1; only the gateway faces the network.

    ``gpus`` starts one ComfyUI per GPU (``CUDA_VISIBLE_DEVICES=<id>``) on ``comfy_port + position``; empty
    starts one ComfyUI (with ``--cpu`` when ``cpu``). ``gateway_command`` is the gateway's argv before its
    options (default: this Python's ``-m wanx gateway``). ``install_workflows`` runs
    ``wanx workflows install --user-dir <data>/user`` before starting. ``only`` (``comfyui`` or ``gateway``)
    runs one side alone, for containers that split them.
    """

    prefix: Path
    models_dir: Path
    data_dir: Path
    cpu: bool = False
    gpus: tuple[int, ...] = ()
    gateway_host: str = "0.0.0.0"
    gateway_port: int = 8080
    comfy_port: int = 8188
    comfy_args: tuple[str, ...] = ()
    gateway_command: tuple[str, ...] = (sys.executable, "-m", "wanx", "gateway")
    install_workflows: bool = True
    only: str | None = None
    policy: RestartPolicy = field(default_factory=RestartPolicy)

    @property
    def upstreams(self) -> tuple[str, ...]:
        count = max(1, len(self.gpus))
        return tuple(f"http://127.0.0.1:{self.comfy_port + i}" for i in range(count))


def default_prefix(environ: Mapping[str, str]) -> Path:
    """``$WANX_PREFIX``, else ``$XDG_DATA_HOME/wanx`` (``~/.local/share/wanx``)."""
    if environ.get("WANX_PREFIX"):
        return Path(environ["WANX_PREFIX"])
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "wanx"


def build_specs(settings: ServeSettings, environ: Mapping[str, str]) -> list[ProcessSpec]:
    """The ComfyUI processes and the gateway, with their argv and environment."""
    if settings.only not in (None, "comfyui", "gateway"):
        raise ConfigError(f"--only {settings.only}: expected comfyui or gateway")
    specs = [] if settings.only == "gateway" else _comfy_specs(settings, environ)
    if settings.only != "comfyui":
        gateway = [*settings.gateway_command, "--listen", f"{settings.gateway_host}:{settings.gateway_port}"]
        # One --upstream per ComfyUI: the gateway's job journal dispatches each job to an idle one.
        for upstream in settings.upstreams:
            gateway += ["--upstream", upstream]
        specs.append(ProcessSpec("gateway", tuple(gateway), {**environ, "WANX_DATA_DIR": str(settings.data_dir)}))
    return specs


def _comfy_specs(settings: ServeSettings, environ: Mapping[str, str]) -> list[ProcessSpec]:
    python = settings.prefix / "venv" / "bin" / "python"
    main = settings.prefix / "ComfyUI" / "main.py"
    if not main.is_file() or not python.exists():
        raise ConfigError(
            f"{settings.prefix}: no ComfyUI install there (expected ComfyUI/main.py and venv/bin/python)",
            hint=f"Run: wanx install --prefix {settings.prefix}",
        )
    extra = settings.prefix / "extra_model_paths.yaml"
    if not _points_at(extra, settings.models_dir):
        extra = write_extra_model_paths(settings.data_dir / "extra_model_paths.yaml", settings.models_dir)
    user = settings.data_dir / "user"
    for folder in (settings.data_dir / "input", settings.data_dir / "output", user, settings.data_dir / "temp"):
        folder.mkdir(parents=True, exist_ok=True)
    specs = []
    backends = settings.gpus or (None,)
    for index, gpu in enumerate(backends):
        port = settings.comfy_port + index
        argv = [str(python), str(main), "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch"]
        argv += ["--extra-model-paths-config", str(extra)]
        argv += ["--input-directory", str(settings.data_dir / "input")]
        argv += ["--output-directory", str(settings.data_dir / "output")]
        argv += ["--temp-directory", str(settings.data_dir / "temp" / str(port))]
        argv += ["--user-directory", str(user)]
        argv += ["--database-url", f"sqlite:///{user / f'comfyui-{port}.db'}"]
        if settings.cpu:
            argv.append("--cpu")
        env = {**environ, **RUNTIME_ENV}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        name = "comfyui" if gpu is None else f"comfyui-gpu{gpu}"
        specs.append(ProcessSpec(name, (*argv, *settings.comfy_args), env, settings.prefix / "ComfyUI"))
    return specs


def serve(settings: ServeSettings, *, environ: Mapping[str, str]) -> int:
    """Supervise ComfyUI and the gateway; meanwhile install the shipped workflows into the user folder.

    The preload runs beside ComfyUI's start (which takes far longer); if it fails, everything stops and
    InstallError says why.
    """
    specs = build_specs(settings, environ)
    supervisor = Supervisor(specs, settings.policy)
    failure: list[InstallError] = []
    if settings.install_workflows and settings.only != "gateway":
        user = settings.data_dir / "user"
        argv = [sys.executable, "-m", "wanx", "workflows", "install", "--user-dir", str(user)]
        if (settings.prefix / "workflows").is_dir():  # the copy `wanx install` made
            argv += ["--workflows-dir", str(settings.prefix / "workflows")]

        def preload() -> None:
            proc = subprocess.run(argv, env=dict(environ), capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                message = f"wanx workflows install --user-dir {user}: exit {proc.returncode}: {proc.stderr[-800:]}"
                hint = "Fix the cause above, or start with --no-workflows to skip preloading the UI workflows."
                failure.append(InstallError(message.strip(), hint=hint))
                supervisor.stop()

        threading.Thread(target=preload, name="workflows-preload", daemon=True).start()
    code = supervisor.run()
    if failure:
        raise failure[0]
    return code


def _points_at(extra: Path, models_dir: Path) -> bool:
    try:
        text = extra.read_text(encoding="utf-8")
    except OSError:
        return False
    return f'base_path: "{models_dir}"' in text
