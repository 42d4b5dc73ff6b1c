"""File-system helpers with one write policy: temp sibling, fsync, then atomic rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

__all__ = ["atomic_write", "free_bytes", "fsync_dir", "safe_relpath", "temp_sibling"]


def safe_relpath(value: str) -> PurePosixPath:
    """Return ``value`` as a relative POSIX path, refusing anything that could escape its base.

    Rejects empty paths, absolute paths (POSIX, drive and UNC forms), backslashes and ``..`` parts.
    """
    if not value or value != value.strip():
        raise ValueError(f"{value!r}: empty path or surrounding whitespace")
    if "\\" in value or "\x00" in value:
        raise ValueError(f"{value!r}: backslashes and NUL are not allowed in a relative path")
    if value.startswith("/") or (len(value) > 1 and value[1] == ":"):
        raise ValueError(f"{value!r}: absolute path, expected a path relative to its base folder")
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise ValueError(f"{value!r}: '.', '..' and empty parts are not allowed")
    return PurePosixPath(value)


@contextlib.contextmanager
def temp_sibling(target: Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a unique temp path beside ``target``; it is removed on exit unless renamed away."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    # mkstemp creates 0600; the file renamed into place must get the usual mode, or another uid (ComfyUI in
    # the container) cannot read what we wrote. Secrets ask for 0600 explicitly.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(
    target: Path, *, mode: int | None = None, binary: bool = False, exclusive: bool = False
) -> Iterator[IO[str] | IO[bytes]]:
    """Open a temp sibling of ``target`` for writing; on success fsync it and rename it into place.

    With ``exclusive`` the file is linked into place instead, so an existing ``target`` is never replaced
    (``FileExistsError``). On any exception the target is left untouched and the temp file is deleted.
    """
    with temp_sibling(target) as tmp:
        if mode is not None:
            os.chmod(tmp, mode)
        with open(tmp, "wb" if binary else "w", encoding=None if binary else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, target)
        else:
            os.replace(tmp, target)
    with contextlib.suppress(OSError):  # the file is whole either way; some file systems refuse this fsync
        fsync_dir(target.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or link in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def free_bytes(path: Path) -> int:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free
