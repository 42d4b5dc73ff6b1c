"""`wanx install` and `wanx serve`: placeholder commands, filled in by the runtime issue."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Mount this module's commands on the root app (none yet)."""
    del root
