"""The write policy and relative-path checks that every module relies on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wanx.fsutil import atomic_write, free_bytes, safe_relpath


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("C:/x", id="drive"),
        pytest.param("\\\\server\\share", id="unc"),
        pytest.param("a/../../b", id="dotdot"),
        pytest.param("a//b", id="empty-part"),
        pytest.param("./a", id="dot"),
        pytest.param(" a", id="whitespace"),
    ],
)
def test_safe_relpath_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        safe_relpath(value)


def test_safe_relpath_accepts_nested() -> None:
    assert str(safe_relpath("text_encoders/wan2.1/x.safetensors")) == "text_encoders/wan2.1/x.safetensors"


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("half")  # type: ignore[arg-type]
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    with atomic_write(target, mode=0o600) as fh:
        fh.write("new")  # type: ignore[arg-type]
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o600


def test_free_bytes_of_missing_path_uses_parent(tmp_path: Path) -> None:
    assert free_bytes(tmp_path / "not" / "yet") > 0


def test_atomic_write_default_mode_follows_umask(tmp_path: Path) -> None:
    target = tmp_path / "extra_model_paths.yaml"
    old = os.umask(0o022)
    try:
        with atomic_write(target) as fh:
            fh.write("x")  # type: ignore[arg-type]
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644
