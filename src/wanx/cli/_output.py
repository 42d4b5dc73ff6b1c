"""What the CLI shows people: rich on stderr. Machine-readable output goes to stdout only."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from wanx.errors import WanxError

__all__ = ["console", "error", "warn"]

console = Console(stderr=True, highlight=False)


def error(exc: WanxError) -> None:
    """Print one failure: the message, then the hint that says what to do."""
    console.print(Text(exc.message, style="bold red"), soft_wrap=True)
    if exc.hint:
        console.print(exc.hint, soft_wrap=True, markup=False)


def warn(message: str) -> None:
    """Print a warning the user should not miss."""
    console.print(Text.assemble(("warning: ", "bold yellow"), message), soft_wrap=True)
