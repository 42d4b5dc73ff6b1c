"""The ``wanx`` command: the root app mounts one module per command group; ``main`` maps errors to exits."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

import typer

from wanx import __version__
from wanx.cli import _output, doctor, gateway, models, run, serve, token, up, workflows
from wanx.errors import WanxError

__all__ = ["app", "main"]

app = typer.Typer(
    name="wanx",
    help="Run ComfyUI with the Wan2.1 workflows: models, gateway, workflows, runtime.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"wanx {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """wanx: ComfyUI with the Wan2.1 image-to-video and VACE workflows, safely, in one command."""


for _module in (models, gateway, token, workflows, run, doctor, up, serve):
    _module.register(app)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI: exit 0 on success, 1 on a wanx error, 2 on a usage error, 130 on Ctrl-C."""
    try:
        result = app(args=list(argv) if argv is not None else None, prog_name="wanx", standalone_mode=False)
    except WanxError as exc:
        _output.error(exc)
        if os.environ.get("WANX_DEBUG") == "1":
            traceback.print_exc()
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        _output.console.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # click's usage errors: they know how to show themselves
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        sys.exit(int(getattr(exc, "exit_code", 2)))
    sys.exit(result if isinstance(result, int) else 0)
