"""`wanx token`: placeholder group, filled in by its issue."""

from __future__ import annotations

import typer

app = typer.Typer(help="token commands.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="token")
