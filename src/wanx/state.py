"""The verified-state file: (size, mtime_ns, inode, sha256) of each file already checked, so re-runs cost ~nothing.

A record is trusted only while the file's size, mtime and inode are unchanged; ``--full`` ignores it and re-hashes.
Entries the lock file does not pin (trust on first use) keep the hash computed at their first download here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, cast

from wanx.fsutil import atomic_write

__all__ = ["STATE_NAME", "FileRecord", "StateFile"]

STATE_NAME = ".wanx-models-state.json"
VERSION = 1


@dataclass(frozen=True, slots=True)
class FileRecord:
    size: int
    mtime_ns: int
    inode: int
    sha256: str
    tofu: bool = False  # the hash was computed here, not pinned by the lock file

    @classmethod
    def of(cls, path: Path, sha256: str, *, tofu: bool = False) -> FileRecord:
        st = path.stat()
        return cls(size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino, sha256=sha256, tofu=tofu)

    def matches(self, path: Path) -> bool:
        """True when ``path`` is still the very file that was hashed (same size, mtime and inode)."""
        try:
            st = path.stat()
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns, st.st_ino) == (self.size, self.mtime_ns, self.inode)


class StateFile:
    """``<models>/.wanx-models-state.json``; every update is a locked read-modify-write, then an atomic rename."""

    def __init__(self, models_dir: Path) -> None:
        self.path = models_dir / STATE_NAME
        self._lock_path = models_dir / f"{STATE_NAME}.lock"

    def load(self) -> dict[str, FileRecord]:
        """Records by lock path; an unreadable or foreign file counts as empty (it only saves work)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("files"), dict):
            return {}
        records: dict[str, FileRecord] = {}
        for key, raw in data["files"].items():
            with contextlib.suppress(TypeError, ValueError):
                records[key] = FileRecord(**raw)
        return records

    def get(self, key: str) -> FileRecord | None:
        return self.load().get(key)

    def put(self, key: str, record: FileRecord) -> None:
        with self._locked():
            records = self.load()
            records[key] = record
            self._write(records)

    def drop(self, key: str) -> None:
        with self._locked():
            records = self.load()
            if records.pop(key, None) is not None:
                self._write(records)

    def _write(self, records: dict[str, FileRecord]) -> None:
        body = {"version": VERSION, "files": {k: asdict(v) for k, v in sorted(records.items())}}
        with atomic_write(self.path) as fh:
            cast("IO[str]", fh).write(json.dumps(body, indent=1) + "\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
