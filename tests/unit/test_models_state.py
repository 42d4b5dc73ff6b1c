"""The verified-state file: a record is trusted only while size, mtime and inode are unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path

from wanx.state import STATE_NAME, FileRecord, StateFile


def test_record_matches_only_the_same_file(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"abc")
    record = FileRecord.of(target, "0" * 64)
    assert record.matches(target)

    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert not record.matches(target)

    replaced = tmp_path / "b.bin"
    replaced.write_bytes(b"abc")
    os.utime(replaced, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replaced, target)  # same size and mtime, another inode
    assert not record.matches(target)
    target.unlink()
    assert not record.matches(target)


def test_put_get_drop_round_trip_with_version(tmp_path: Path) -> None:
    target = tmp_path / "vae" / "a.bin"
    target.parent.mkdir()
    target.write_bytes(b"abc")
    state = StateFile(tmp_path)
    record = FileRecord.of(target, "1" * 64, tofu=True)
    state.put("vae/a.bin", record)
    assert StateFile(tmp_path).get("vae/a.bin") == record
    data = json.loads((tmp_path / STATE_NAME).read_text())
    assert data["version"] == 1 and data["files"]["vae/a.bin"]["tofu"] is True
    state.drop("vae/a.bin")
    assert state.load() == {}


def test_unreadable_or_foreign_state_counts_as_empty(tmp_path: Path) -> None:
    path = tmp_path / STATE_NAME
    for text in ("not json", "[]", '{"version": 2, "files": {}}', '{"version": 1, "files": {"a": {"size": 1}}}'):
        path.write_text(text)
        assert StateFile(tmp_path).load() == {}
