"""Plan -> lock -> download to a partial file -> verify size and sha256 -> rename into models/ -> record state.

Nothing reaches a final path before its bytes match the lock file. The per-file ``flock`` only stops two fetches
from downloading the same bytes twice; on NFS it may silently not exclude, and the atomic rename of a fully
verified partial file is what keeps every final file whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from wanx.errors import (
    ChecksumMismatch,
    DiskFullError,
    SizeMismatch,
    SourceUnavailable,
    UnverifiedEntryError,
    WanxError,
)
from wanx.fsutil import free_bytes, fsync_dir
from wanx.lockfile import LockEntry, SourceKind
from wanx.sources import Origin, SourceSettings, origins_for, probe
from wanx.state import FileRecord, StateFile
from wanx.transfer import Cancelled, HashingWriter, hash_file, hash_prefix, receive

__all__ = ["FetchOptions", "FileResult", "Reporter", "Status", "fetch", "partial_path"]

LOCK_POLL_S = 0.2
log = logging.getLogger(__name__)


class Status(StrEnum):
    PRESENT = "present"  # already there and verified (state file or hash)
    FETCHED = "fetched"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class FetchOptions:
    models_dir: Path
    settings: SourceSettings
    kinds: tuple[SourceKind, ...] = ()
    jobs: int = 2
    full: bool = False
    allow_unverified: bool = False


@dataclass(frozen=True, slots=True)
class FileResult:
    entry: LockEntry
    status: Status
    message: str
    sha256: str | None = None
    tofu: bool = False  # verified only against a hash computed here (the lock file pins none)


class Reporter(Protocol):
    """How the fetcher tells its caller what happens; the CLI draws rich progress bars from it."""

    def begin(self, entry: LockEntry, *, total: int | None, done: int, action: str) -> None: ...

    def advance(self, entry: LockEntry, n: int) -> None: ...

    def note(self, entry: LockEntry, message: str) -> None: ...

    def end(self, result: FileResult) -> None: ...


def partial_path(models_dir: Path, entry: LockEntry) -> Path:
    """The partial download beside the target, named from the expected sha256 so stale bytes are never resumed."""
    target = models_dir / entry.path
    return target.parent / f".{target.name}.{(entry.sha256 or 'unpinned')[:16]}.partial"


def fetch(
    entries: Sequence[LockEntry], options: FetchOptions, reporter: Reporter, *, cancel: threading.Event | None = None
) -> list[FileResult]:
    """Make every entry present and verified under ``options.models_dir``; one result per entry, in order.

    Raises:
        UnverifiedEntryError: an entry without a pinned sha256 needs downloading and allow_unverified is off.
        DiskFullError: the volume has less free space than the files still to fetch.
        KeyboardInterrupt: after every worker stopped; partial files stay and resume on the next run.
    """
    cancel = cancel or threading.Event()
    state = StateFile(options.models_dir)
    records = {} if options.full else state.load()
    todo = [e for e in entries if not _trusted(e, records.get(e.path), options.models_dir)]
    _check_unverified(todo, options)
    _check_space(todo, options.models_dir)
    done = {
        e.path: FileResult(e, Status.PRESENT, "verified (state file)", records[e.path].sha256, tofu=e.sha256 is None)
        for e in entries
        if e not in todo
    }
    for result in done.values():
        reporter.end(result)
    worker = _Worker(options, state, reporter, cancel)
    with ThreadPoolExecutor(max_workers=max(1, options.jobs), thread_name_prefix="fetch") as pool:
        futures: dict[Future[FileResult], LockEntry] = {pool.submit(worker.run, e): e for e in todo}
        try:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                for future in finished:
                    result = future.result()
                    done[result.entry.path] = result
                    reporter.end(result)
        except BaseException:
            cancel.set()
            raise
    return [done[e.path] for e in entries]


def _trusted(entry: LockEntry, record: FileRecord | None, models_dir: Path) -> bool:
    """The state file vouches for this file: same size, mtime and inode as when it was hashed, and the right hash."""
    if record is None or not record.matches(models_dir / entry.path):
        return False
    if entry.sha256 is None:
        return record.tofu
    return record.sha256 == entry.sha256 and (entry.size is None or record.size == entry.size)


def _check_unverified(todo: Sequence[LockEntry], options: FetchOptions) -> None:
    if options.allow_unverified:
        return
    for entry in todo:
        if entry.sha256 is None:
            raise UnverifiedEntryError(
                f"{entry.path}: the lock file pins no sha256 ({entry.unresolved or 'unresolved'})",
                hint="Run again with --allow-unverified to download it and record the hash it has (trust on first "
                "use), or pin size and sha256 in models.lock.yaml (wanx models lock).",
            )


def _check_space(todo: Sequence[LockEntry], models_dir: Path) -> None:
    need = 0
    for entry in todo:
        target = models_dir / entry.path
        if entry.size is None or (target.exists() and target.stat().st_size == entry.size):
            continue
        partial = partial_path(models_dir, entry)
        have = partial.stat().st_size if partial.exists() else 0
        need += max(0, entry.size - have)
    free = free_bytes(models_dir)
    if need > free:
        raise DiskFullError(
            f"{models_dir}: {_gib(need)} needed for the files still to fetch, {_gib(free)} free",
            hint="Free space, point --models-dir at a larger volume, or fetch fewer files with --workflow.",
        )


class _Worker:
    def __init__(self, options: FetchOptions, state: StateFile, reporter: Reporter, cancel: threading.Event) -> None:
        self.options = options
        self.state = state
        self.reporter = reporter
        self.cancel = cancel

    def run(self, entry: LockEntry) -> FileResult:
        target = self.options.models_dir / entry.path
        try:
            with self._locked(entry, target):
                present = self._check_present(entry, target)
                return present or self._download(entry, target)
        except Cancelled:
            raise KeyboardInterrupt from None
        except (DiskFullError, OSError) as exc:
            message = exc.message if isinstance(exc, WanxError) else f"{target}: {exc.strerror or exc}"
            return FileResult(entry, Status.FAILED, message)

    @contextlib.contextmanager
    def _locked(self, entry: LockEntry, target: Path) -> Iterator[None]:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target.parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            waiting = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waiting:
                        self.reporter.note(entry, "another wanx fetch is writing this file; waiting for it")
                        waiting = True
                    if self.cancel.is_set():
                        raise Cancelled(entry.path) from None
                    time.sleep(LOCK_POLL_S)
            yield
        finally:
            os.close(fd)

    def _advance(self, entry: LockEntry) -> Callable[[int], None]:
        def advance(n: int) -> None:
            if self.cancel.is_set():
                raise Cancelled(entry.path)
            self.reporter.advance(entry, n)

        return advance

    def _check_present(self, entry: LockEntry, target: Path) -> FileResult | None:
        """Under the lock: trust a fresh state record, else hash a file of the right size that is already there."""
        record = None if self.options.full else self.state.get(entry.path)
        if _trusted(entry, record, self.options.models_dir):
            assert record is not None
            return FileResult(entry, Status.PRESENT, "verified (state file)", record.sha256, tofu=entry.sha256 is None)
        if not target.is_file():
            return None
        size = target.stat().st_size
        if entry.size is not None and size != entry.size:
            self.reporter.note(entry, f"present with {size} bytes, expected {entry.size}: downloading it again")
            return None
        self.reporter.begin(entry, total=size, done=0, action="verify")
        sha = hash_file(target, self._advance(entry))
        if entry.sha256 is None:
            known = self.state.get(entry.path)
            if known is not None and known.tofu and known.sha256 != sha:
                self.reporter.note(entry, f"sha256 {sha} differs from the one recorded first ({known.sha256})")
                return None
            if not self.options.allow_unverified and known is None:
                return None
            self.state.put(entry.path, FileRecord.of(target, sha, tofu=True))
            return FileResult(entry, Status.PRESENT, "present (trust on first use)", sha, tofu=True)
        if sha == entry.sha256:
            self.state.put(entry.path, FileRecord.of(target, sha))
            return FileResult(entry, Status.PRESENT, "verified (hashed)", sha)
        self.reporter.note(entry, f"present but sha256 is {sha[:12]}…, expected {entry.sha256[:12]}…: repairing")
        self.state.drop(entry.path)
        return None

    def _download(self, entry: LockEntry, target: Path) -> FileResult:
        origins, skipped = origins_for(entry, self.options.settings, kinds=self.options.kinds)
        failures = list(skipped)
        for origin in origins:
            try:
                return self._from(entry, target, origin)
            except (SourceUnavailable, SizeMismatch, ChecksumMismatch) as exc:
                log.info(exc.message, extra={"event": "fetch.source_failed", "file": entry.path, "code": exc.code})
                failures.append(exc.message)
                self.reporter.note(entry, exc.message)
        tried = "; ".join(failures) or "no source configured"
        return FileResult(entry, Status.FAILED, f"{entry.path}: no source delivered the right bytes ({tried})")

    def _from(self, entry: LockEntry, target: Path, origin: Origin) -> FileResult:
        info = probe(origin)
        if entry.size is not None and info.size is not None and info.size != entry.size:
            raise SizeMismatch(f"{origin.label}: serves {info.size} bytes, the lock file says {entry.size}")
        if entry.sha256 and info.sha256 and info.sha256 != entry.sha256:
            raise ChecksumMismatch(f"{origin.label}: publishes sha256 {info.sha256}, the lock file pins {entry.sha256}")
        size = entry.size if entry.size is not None else info.size
        partial = partial_path(self.options.models_dir, entry)
        for attempt in (1, 2):
            offset = partial.stat().st_size if partial.exists() else 0
            if size is not None and offset > size:
                offset = 0
            try:
                sha = self._receive(entry, origin, partial, offset, size)
            except ChecksumMismatch:
                partial.unlink(missing_ok=True)
                if attempt == 1 and offset > 0:  # the kept bytes may be what was wrong: once more from zero
                    self.reporter.note(entry, "resumed bytes did not verify; downloading from the start")
                    continue
                raise
            return self._place(entry, target, partial, sha, origin)
        raise AssertionError("unreachable")

    def _receive(self, entry: LockEntry, origin: Origin, partial: Path, offset: int, size: int | None) -> str:
        self.reporter.begin(entry, total=size, done=0, action="download")
        advance = self._advance(entry)
        if offset:
            self.reporter.note(entry, f"resuming at {offset} bytes from {origin.label}")
        sha = hash_prefix(partial, offset, advance)
        writer = HashingWriter(partial, offset=offset, sha=sha, progress=advance, cancel=self.cancel, label=entry.path)
        try:
            receive(origin, writer, expected_size=size)
        except BaseException:
            writer.abort()
            raise
        digest = writer.finish()
        got = partial.stat().st_size
        if size is not None and got != size:
            partial.unlink(missing_ok=True)
            raise SizeMismatch(f"{origin.label}: delivered {got} bytes, expected {size}")
        if entry.sha256 is not None and digest != entry.sha256:
            raise ChecksumMismatch(
                f"{origin.label}: delivered bytes with sha256 {digest}, the lock file pins {entry.sha256}"
            )
        return digest

    def _place(self, entry: LockEntry, target: Path, partial: Path, sha: str, origin: Origin) -> FileResult:
        if entry.sha256 is None:
            known = self.state.get(entry.path)
            if known is not None and known.tofu and known.sha256 != sha:
                partial.unlink(missing_ok=True)
                raise ChecksumMismatch(
                    f"{origin.label}: sha256 {sha} differs from the one first recorded here ({known.sha256})"
                )
        os.replace(partial, target)
        fsync_dir(target.parent)
        self.state.put(entry.path, FileRecord.of(target, sha, tofu=entry.sha256 is None))
        log.info("placed", extra={"event": "fetch.placed", "file": entry.path, "bytes": target.stat().st_size})
        how = "trust on first use" if entry.sha256 is None else "verified"
        return FileResult(entry, Status.FETCHED, f"fetched from {origin.label} ({how})", sha, tofu=entry.sha256 is None)


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"
