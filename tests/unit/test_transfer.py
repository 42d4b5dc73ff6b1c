"""The hashing sink: bytes written equal bytes hashed, including after a resume and a server that ignores Range."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pytest

from wanx.transfer import BUFFER, Cancelled, HashingWriter, hash_file, hash_prefix


def _writer(path: Path, offset: int = 0, cancel: threading.Event | None = None) -> tuple[HashingWriter, list[int]]:
    seen: list[int] = []
    sha = hash_prefix(path, offset) if offset else None
    writer = HashingWriter(
        path, offset=offset, sha=sha, progress=seen.append, cancel=cancel or threading.Event(), label="x"
    )
    return writer, seen


def test_resume_hashes_the_kept_prefix_then_the_rest(tmp_path: Path) -> None:
    data = os.urandom(3_000_000)
    path = tmp_path / "p"
    path.write_bytes(data[:1_000_000] + b"garbage beyond the offset")
    writer, seen = _writer(path, offset=1_000_000)
    for i in range(1_000_000, len(data), 65536):
        writer.write(data[i : i + 65536])
    assert writer.finish() == hashlib.sha256(data).hexdigest()
    assert path.read_bytes() == data
    assert sum(seen) == 2_000_000


def test_whole_buffers_then_an_odd_tail_land_intact(tmp_path: Path) -> None:
    """Full page-aligned buffers go to disk with O_DIRECT where the filesystem allows; the odd tail falls back."""
    data = os.urandom(2 * BUFFER + 12_345)
    path = tmp_path / "p"
    writer, seen = _writer(path)
    writer.pump(io.BytesIO(data).readinto)
    assert writer.finish() == hashlib.sha256(data).hexdigest()
    assert path.read_bytes() == data
    assert sum(seen) == len(data)


def test_restart_drops_the_prefix(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    path = tmp_path / "p"
    path.write_bytes(b"old" * 1000)
    writer, _ = _writer(path, offset=3000)
    writer.write(b"partial")
    writer.restart()
    writer.write(data)
    assert writer.finish() == hashlib.sha256(data).hexdigest()
    assert path.read_bytes() == data


def test_cancel_stops_at_the_next_chunk(tmp_path: Path) -> None:
    cancel = threading.Event()
    writer, _ = _writer(tmp_path / "p", cancel=cancel)
    writer.write(b"a")
    cancel.set()
    with pytest.raises(Cancelled):
        writer.write(b"b")
    writer.abort()
    assert (tmp_path / "p").read_bytes() == b"a"


def test_hash_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(9 * 1024 * 1024 + 7)
    (tmp_path / "f").write_bytes(data)
    assert hash_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
