"""Rich progress for fetch and verify: one bar per file plus a total; plain lines when stderr is not a terminal."""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from wanx.fetch import FileResult, Status
from wanx.lockfile import LockEntry

__all__ = ["RichReporter"]


class RichReporter:
    """Implements ``wanx.fetch.Reporter``. ``quiet`` keeps only failures and warnings."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self._progress = Progress(
            TextColumn("{task.description}", table_column=None),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not self.live,
        )
        self._lock = threading.Lock()
        self._tasks: dict[str, TaskID] = {}
        self._done: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self._total = self._progress.add_task("[bold]total", total=0, visible=self.live)

    def __enter__(self) -> RichReporter:
        self._progress.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.__exit__(kind, value, tb)

    def begin(self, entry: LockEntry, *, total: int | None, done: int, action: str) -> None:
        with self._lock:
            old_done = self._done.get(entry.path, 0)
            old_size = self._sizes.get(entry.path, 0)
            self._done[entry.path] = done
            self._sizes[entry.path] = total or 0
            total_task = self._progress.tasks[self._total]
            self._progress.update(
                self._total,
                total=(total_task.total or 0) - old_size + (total or 0),
                completed=total_task.completed - old_done + done,
            )
            label = f"{action:8} {entry.path}"
            if entry.path in self._tasks:
                self._progress.reset(self._tasks[entry.path], total=total, completed=done, description=label)
            else:
                self._tasks[entry.path] = self._progress.add_task(label, total=total, completed=done)
        if not self.live and not self.quiet:
            self.console.print(f"{action}: {entry.path}", markup=False, highlight=False)

    def advance(self, entry: LockEntry, n: int) -> None:
        with self._lock:
            self._done[entry.path] = self._done.get(entry.path, 0) + n
            task = self._tasks.get(entry.path)
            if task is not None:
                self._progress.advance(task, n)
            self._progress.advance(self._total, n)

    def note(self, entry: LockEntry, message: str) -> None:
        if not self.quiet:
            self.console.print(Text.assemble((f"{entry.path}: ", "dim"), message), soft_wrap=True)

    def end(self, result: FileResult) -> None:
        path = result.entry.path
        with self._lock:
            task = self._tasks.get(path)
            if task is not None:
                self._progress.update(task, visible=False)
        if result.status is Status.FAILED:
            self.console.print(Text(result.message, style="bold red"), soft_wrap=True)
        elif result.tofu:
            self.console.print(
                Text.assemble(
                    ("warning: ", "bold yellow"),
                    f"{path}: not pinned by the lock file; trusting sha256 {result.sha256} (trust on first use). "
                    "Pin it in models.lock.yaml once you have checked it.",
                ),
                soft_wrap=True,
            )
        elif not self.quiet:
            self.console.print(Text.assemble(("ok ", "green"), f"{path}: {result.message}"), soft_wrap=True)
