"""Preload the UI-format workflows into ComfyUI's ``user/default/workflows/`` at service start.

A manifest beside that folder records the hash of each file we wrote. On the next start a file is
updated only if it still has that hash (nobody edited it); a user's own or edited file is kept and reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, cast

from wanx.errors import ConfigError
from wanx.fsutil import atomic_write

__all__ = ["MANIFEST_NAME", "InstallAction", "InstallResult", "install_workflows", "write_bytes"]

MANIFEST_NAME = ".wanx-workflows.json"  # in user/default/, outside workflows/ so it never shows in the list


class InstallAction(StrEnum):
    INSTALLED = "installed"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    KEPT = "kept"  # the file there is the user's: left as it is


@dataclass(frozen=True, slots=True)
class InstallResult:
    name: str
    action: InstallAction
    path: Path


def write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (temp sibling, fsync, rename)."""
    with atomic_write(target, binary=True) as fh:
        cast(IO[bytes], fh).write(data)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install_workflows(sources: Iterable[Path], user_dir: Path) -> list[InstallResult]:
    """Copy each UI graph in ``sources`` into ``<user_dir>/default/workflows/`` following the manifest rules."""
    folder = user_dir / "default" / "workflows"
    manifest_path = user_dir / "default" / MANIFEST_NAME
    manifest = _read_manifest(manifest_path)
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for source in sorted(sources):
        data = source.read_bytes()
        target = folder / source.name
        action = _decide(target, _sha256(data), manifest.get(source.name))
        if action in (InstallAction.INSTALLED, InstallAction.UPDATED):
            write_bytes(target, data)
        if action is not InstallAction.KEPT:
            manifest[source.name] = _sha256(data)
        results.append(InstallResult(source.name, action, target))
    write_bytes(
        manifest_path, (json.dumps({"version": 1, "files": manifest}, indent=2, sort_keys=True) + "\n").encode()
    )
    return results


def _decide(target: Path, new_hash: str, recorded: str | None) -> InstallAction:
    if not target.exists():
        return InstallAction.INSTALLED
    current = _sha256(target.read_bytes())
    if current == new_hash:
        return InstallAction.UNCHANGED
    if recorded is not None and current == recorded:
        return InstallAction.UPDATED
    return InstallAction.KEPT


def _read_manifest(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        if data.get("version") != 1 or not isinstance(files, dict):
            raise ValueError("expected version 1 and a files object")
        return {str(k): str(v) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path}: unreadable workflow manifest ({exc})",
            hint="Delete it; the next install keeps every existing workflow file and records the shipped ones again.",
        ) from exc
