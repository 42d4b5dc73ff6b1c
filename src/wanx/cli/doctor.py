"""`wanx doctor`: check this host for the compose stack and print the effective settings, masked."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from wanx.cli import _output
from wanx.doctor import DoctorOptions, ModelFile, Report, Status, run_checks
from wanx.errors import PreflightFailed
from wanx.lockfile import LOCKFILE_NAME, load_lockfile
from wanx.stack import StackConfig, masked_settings, read_env_file

__all__ = ["load_environ", "preflight", "register", "render"]

_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}

RootOpt = Annotated[Path, typer.Option("--root", help="The wanx checkout (holds .env, deploy/ and the lock file).")]
EnvFileOpt = Annotated[Path | None, typer.Option("--env-file", help="The stack's settings file [default: ROOT/.env].")]
WorkflowsOpt = Annotated[
    str | None, typer.Option("--workflows", help="Comma-separated workflows to check for [default: WANX_WORKFLOWS].")
]
CpuOpt = Annotated[bool, typer.Option("--cpu", help="CPU mode: no GPU or NVIDIA runtime needed.")]
NoDockerOpt = Annotated[bool, typer.Option("--no-docker", help="Check for the no-Docker mode (no container engine).")]


def load_environ(env_file: Path, process_env: Mapping[str, str]) -> dict[str, str]:
    """The ``.env`` values (when the file exists) overlaid by the process environment, as compose does."""
    values = read_env_file(env_file) if env_file.is_file() else {}
    return {**values, **process_env}


def model_files(root: Path, workflows: tuple[str, ...]) -> tuple[ModelFile, ...]:
    """The weight files the selected workflows load, from the lock file at ``root``."""
    lockfile = load_lockfile(root / LOCKFILE_NAME)
    return tuple(ModelFile(e.path, e.size) for e in lockfile.select(workflows))


def preflight(
    config: StackConfig, environ: Mapping[str, str], *, cpu: bool, container: bool, path: str | None
) -> Report:
    """Run the doctor for ``config``; raise ``ConfigError`` for a workflow the lock file does not know."""
    return run_checks(
        DoctorOptions(
            workflows=config.workflows,
            models_dir=config.models_dir,
            model_files=model_files(config.root, config.workflows),
            cpu=cpu,
            container=container,
            path=path,
            settings=masked_settings(environ),
        )
    )


def render(report: Report) -> None:
    """Print the checks and the settings as two tables on stderr."""
    table = Table(title="wanx doctor", show_lines=False)
    for column in ("check", "status", "detail", "what to do"):
        table.add_column(column, overflow="fold")
    for check in report.checks:
        table.add_row(check.name, f"[{_STYLE[check.status]}]{check.status}[/]", check.detail, check.hint)
    _output.console.print(table)
    settings = Table(title="effective settings (secrets masked)")
    settings.add_column("name")
    settings.add_column("value", overflow="fold")
    for name, value in report.settings.items():
        settings.add_row(name, value)
    _output.console.print(settings)


def register(root: typer.Typer) -> None:
    @root.command("doctor")
    def doctor(
        root_dir: RootOpt = Path("."),
        env_file: EnvFileOpt = None,
        workflows: WorkflowsOpt = None,
        cpu: CpuOpt = False,
        no_docker: NoDockerOpt = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")] = False,
    ) -> None:
        """Check the host: container engine, NVIDIA runtime, GPU memory, host RAM, free disk; show settings."""
        environ = load_environ(env_file or root_dir / ".env", os.environ)
        if workflows is not None:
            environ["WANX_WORKFLOWS"] = workflows
        config = StackConfig.from_env(environ, root=root_dir.resolve())
        report = preflight(config, environ, cpu=cpu, container=not no_docker, path=os.environ.get("PATH"))
        if as_json:
            print(json.dumps(report.to_json(), indent=2))
        else:
            render(report)
        if not report.ok:
            failed = ", ".join(c.name for c in report.checks if c.status is Status.FAIL)
            raise PreflightFailed(f"wanx doctor: {failed} failed.", hint="Do what the table says, then run it again.")
