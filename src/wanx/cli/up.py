"""`wanx up` and `wanx down`: preflight, `.env`, models, image, start the compose stack, wait for `/readyz`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from wanx.cli import _output
from wanx.cli.doctor import CpuOpt, EnvFileOpt, RootOpt, WorkflowsOpt, load_environ, preflight, render
from wanx.compose import Stack, wait_ready
from wanx.doctor import Engine, Report, Status, find_engine
from wanx.errors import PreflightFailed, StackCommandFailed, StackNotReady
from wanx.install import InstallSettings, Mode, install_stack, source_overrides_from_env
from wanx.lockfile import LOCKFILE_NAME, load_lockfile
from wanx.stack import GPU_TORCH_INDEX_URL, GPU_TORCH_SPEC, StackConfig, create_env_file, fill_token
from wanx.supervise import ServeSettings, default_prefix, serve

__all__ = ["fetch_argv", "register"]

CONTAINER_UID = 1000  # the image's `wanx` user

TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for /readyz once started.")]


def _no_gpu(report: Report) -> bool:
    gpu = [c for c in report.checks if c.name == "gpu"]
    return bool(gpu) and gpu[0].status is Status.FAIL and gpu[0].detail.startswith("no NVIDIA GPU")


def _choose_cpu(report: Report, *, interactive: bool) -> bool:
    """On a host without an NVIDIA GPU, offer the CPU mode (asked only on a terminal)."""
    if not _no_gpu(report) or not interactive:
        return False
    _output.console.print("No NVIDIA GPU was found on this machine.")
    return typer.confirm(
        "Start in CPU mode? The web page and the API work, but generating a video is impractically slow",
        default=False,
    )


def _prepare_dirs(config: StackConfig) -> tuple[int, int]:
    """Create the host folders; return the uid:gid the containers run as (the caller's, or the image's as root)."""
    folders = [config.models_dir, config.data_dir, *(config.data_dir / d for d in ("input", "output", "user"))]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        return uid, gid
    # As root, run the containers as the image's unprivileged user and hand it the two folders.
    for top in (config.models_dir, config.data_dir):
        for dirpath, _dirs, files in os.walk(top):
            os.chown(dirpath, CONTAINER_UID, CONTAINER_UID)
            for name in files:
                os.chown(os.path.join(dirpath, name), CONTAINER_UID, CONTAINER_UID, follow_symlinks=False)
    return CONTAINER_UID, CONTAINER_UID


def fetch_argv(config: StackConfig) -> tuple[list[str], list[str]]:
    """The `wanx models fetch` command for the selected workflows, and the entries it fetches unverified."""
    lockfile = config.root / LOCKFILE_NAME
    entries = load_lockfile(lockfile).select(config.workflows)
    unverified = [e.path for e in entries if e.sha256 is None]
    argv = [sys.executable, "-m", "wanx", "models", "fetch", "--lockfile", str(lockfile)]
    argv += ["--models-dir", str(config.models_dir)]
    for workflow in config.workflows:
        argv += ["--workflow", workflow]
    if unverified:
        argv.append("--allow-unverified")
    return argv, unverified


def _fetch(config: StackConfig) -> None:
    """Fetch only the selected workflows' models (entries without a sha256 are fetched unverified, with a warning)."""
    argv, unverified = fetch_argv(config)
    if unverified:
        _output.warn(
            f"{len(unverified)} lock file entries have no sha256 and are fetched unverified: {', '.join(unverified)}. "
            "Pin them with `wanx models lock` when you can."
        )
    result = subprocess.run(argv, check=False)
    if result.returncode != 0:
        raise StackCommandFailed(
            f"wanx models fetch: exited with status {result.returncode}.",
            hint="Read its message above; rerun `make fetch` to resume (finished files are kept).",
        )


def _serve_here(config: StackConfig, environ: dict[str, str], *, cpu: bool, timeout: float) -> int:
    """The no-Docker mode: the runtime's install and supervisor (wanx.install, wanx.supervise) on this host."""
    mode = Mode.CPU if cpu else Mode.GPU
    sources, mirror = source_overrides_from_env(environ)
    workflows = config.root / "workflows"
    prefix = default_prefix(environ)
    settings = InstallSettings(
        prefix=prefix,
        lock_path=config.root / "comfyui.lock.yaml",
        constraints=config.root / "constraints" / f"comfyui-{mode.value}.txt",
        models_dir=config.models_dir,
        mode=mode,
        sources=sources,
        mirror=mirror,
        workflows_dir=workflows if workflows.is_dir() else None,
        torch_spec=tuple((environ.get("WANX_TORCH_SPEC") or GPU_TORCH_SPEC).split()),
        torch_index_url=environ.get("WANX_TORCH_INDEX_URL") or GPU_TORCH_INDEX_URL,
    )
    result = install_stack(settings, on_step=lambda message: _output.console.print(f"[dim]install[/dim] {message}"))
    _output.console.print(f"ComfyUI installed in {result.comfyui_dir} ({result.seconds} s)")
    serve_settings = ServeSettings(
        prefix=prefix,
        models_dir=config.models_dir,
        data_dir=config.data_dir,
        cpu=cpu,
        gpus=() if cpu else config.gpus,
        gateway_host=config.bind,
        gateway_port=config.port,
    )
    threading.Thread(target=_announce, args=(config, timeout), daemon=True).start()
    return serve(serve_settings, environ=environ)


def _announce(config: StackConfig, timeout: float) -> None:
    """Print the URL once the supervised gateway answers /readyz (the supervisor keeps the foreground)."""
    try:
        waited = wait_ready(f"{config.local_url}/readyz", timeout=timeout)
    except StackNotReady as e:
        _output.error(e)
        return
    _output.console.print(f"[bold green]ready[/] in {waited:.0f} s: open {config.local_url}/ (Ctrl-C stops)")


def _engine(report: Report) -> Engine:
    if report.engine is None:  # the doctor failed already; this is for the type checker
        raise PreflightFailed("wanx up: no container engine.", hint="Run wanx doctor.")
    return report.engine


def register(root: typer.Typer) -> None:
    @root.command("up")
    def up(
        root_dir: RootOpt = Path("."),
        env_file: EnvFileOpt = None,
        workflows: WorkflowsOpt = None,
        cpu: CpuOpt = False,
        skip_fetch: Annotated[bool, typer.Option("--skip-fetch", help="Do not fetch models first.")] = False,
        timeout: TimeoutOpt = 900.0,
        no_docker: Annotated[
            bool,
            typer.Option("--no-docker", help="No containers: install the pinned stack here and run it supervised."),
        ] = False,
    ) -> None:
        """Start the stack: preflight, .env with a fresh token, models, image, compose up, wait for /readyz."""
        started = time.monotonic()
        root_dir = root_dir.resolve()
        env_path = env_file or root_dir / ".env"
        if not env_path.exists():
            create_env_file(env_path, example=root_dir / ".env.example")
            _output.console.print(f"created {env_path} with a new admin token (WANX_TOKEN, mode 0600)")
        environ = load_environ(env_path, os.environ)
        if not environ.get("WANX_TOKEN", "").strip():
            environ["WANX_TOKEN"] = fill_token(env_path)
            _output.console.print(f"WANX_TOKEN was empty: wrote a new admin token into {env_path} (mode 0600)")
        if workflows is not None:
            environ["WANX_WORKFLOWS"] = workflows
        config = StackConfig.from_env(environ, root=root_dir)
        path = os.environ.get("PATH")
        report = preflight(config, environ, cpu=cpu, container=not no_docker, path=path)
        if not report.ok and not cpu and _choose_cpu(report, interactive=sys.stdin.isatty()):
            cpu = True
            report = preflight(config, environ, cpu=True, container=not no_docker, path=path)
        render(report)
        if not report.ok:
            failed = ", ".join(c.name for c in report.checks if c.status is Status.FAIL)
            hint = "Do what the table says, then run make up again."
            if _no_gpu(report):
                hint += " Without a GPU: make up CPU=1 (web page and API only; generation is impractically slow)."
            raise PreflightFailed(f"wanx up: preflight failed ({failed}).", hint=hint)
        if cpu:
            _output.warn("CPU mode: ComfyUI runs with --cpu; generating a video takes hours, not minutes.")
        else:
            config = config.with_gpus(len(report.gpus))
            if len(config.gpus) > 1:
                _output.console.print(f"one ComfyUI per GPU ({', '.join(map(str, config.gpus))}) behind one gateway")

        if no_docker:
            if not skip_fetch:
                _fetch(config)
            raise typer.Exit(_serve_here(config, environ, cpu=cpu, timeout=timeout))
        if not skip_fetch:
            _fetch(config)
        uid, gid = _prepare_dirs(config)  # after the fetch: as root, what it wrote goes to the container's uid too
        stack = Stack(_engine(report), config, env_path, cpu=cpu, environ=dict(os.environ), uid=uid, gid=gid)
        _output.console.print(stack.build_or_pull())
        stack.up()
        _output.console.print(f"waiting for {config.local_url}/readyz (up to {timeout:.0f} s)")
        waited = wait_ready(f"{config.local_url}/readyz", timeout=timeout)
        _output.console.print(
            f"[bold green]ready[/] in {waited:.0f} s ({time.monotonic() - started:.0f} s in all): "
            f"open {config.local_url}/ (port {config.port} on every address this host has, bound to {config.bind})"
        )
        _output.console.print(f"admin token: WANX_TOKEN in {env_path}; `make logs` shows the logs, `make down` stops.")

    root.add_typer(stack_app, name="stack")


stack_app = typer.Typer(help="The running compose stack: status, logs, down.", no_args_is_help=True)


def _stack(root_dir: Path, env_file: Path | None, cpu: bool) -> Stack:
    root_dir = root_dir.resolve()
    env_path = env_file or root_dir / ".env"
    environ = load_environ(env_path, os.environ)
    config = StackConfig.from_env(environ, root=root_dir)
    engine, why = find_engine(os.environ.get("PATH"))
    if engine is None or not engine.compose:
        raise PreflightFailed(
            f"wanx stack: no container engine with compose ({why or 'no compose command'}).",
            hint="Run wanx doctor and do what it says.",
        )
    return Stack(engine, config, env_path, cpu=cpu, environ=dict(os.environ))


@stack_app.command("down")
def down(root_dir: RootOpt = Path("."), env_file: EnvFileOpt = None, cpu: CpuOpt = False) -> None:
    """Stop and remove the containers (the models and data folders are kept)."""
    _stack(root_dir, env_file, cpu).down()


@stack_app.command("status")
def status(root_dir: RootOpt = Path("."), env_file: EnvFileOpt = None, cpu: CpuOpt = False) -> None:
    """Show the containers and whether the gateway answers /readyz."""
    stack = _stack(root_dir, env_file, cpu)
    stack.run("ps", what="listing the containers")
    url = f"{stack.config.local_url}/readyz"
    try:
        wait_ready(url, timeout=0)
        _output.console.print(f"{url}: [green]ready[/]")
    except StackNotReady as e:
        _output.warn(e.message)


@stack_app.command("logs")
def logs(
    root_dir: RootOpt = Path("."),
    env_file: EnvFileOpt = None,
    cpu: CpuOpt = False,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Keep following new lines.")] = True,
) -> None:
    """Show the containers' logs."""
    _stack(root_dir, env_file, cpu).run("logs", *(["--follow"] if follow else []), what="reading the logs")


@stack_app.command("fetch")
def fetch(root_dir: RootOpt = Path("."), env_file: EnvFileOpt = None, workflows: WorkflowsOpt = None) -> None:
    """Fetch the models of WANX_WORKFLOWS into WANX_MODELS_DIR (what `wanx up` does first)."""
    root_dir = root_dir.resolve()
    environ = load_environ(env_file or root_dir / ".env", os.environ)
    if workflows is not None:
        environ["WANX_WORKFLOWS"] = workflows
    _fetch(StackConfig.from_env(environ, root=root_dir))


@stack_app.command("build")
def build(root_dir: RootOpt = Path("."), env_file: EnvFileOpt = None) -> None:
    """Build the runtime image from the Dockerfile, or pull WANX_IMAGE when it is set."""
    _output.console.print(_stack(root_dir, env_file, cpu=False).build_or_pull())
