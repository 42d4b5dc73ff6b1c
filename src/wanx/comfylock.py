"""comfyui.lock.yaml: ComfyUI and its node packs, each pinned to one upstream commit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wanx.errors import ComfyLockError

__all__ = ["AvoidedCommit", "ComfyLock", "PinnedRepo", "load_comfylock"]

_COMMIT = re.compile(r"[0-9a-f]{40}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class AvoidedCommit:
    """A commit known to be broken; pinning it is refused."""

    commit: str
    reason: str


@dataclass(frozen=True, slots=True)
class PinnedRepo:
    """One git repository at one commit. ``name`` is also its folder name under ComfyUI."""

    name: str
    repo: str
    commit: str
    version: str
    avoid: tuple[AvoidedCommit, ...] = ()

    @property
    def env_key(self) -> str:
        """Suffix of its source-override variable: ``ComfyUI-KJNodes`` -> ``COMFYUI_KJNODES``."""
        return re.sub(r"[^A-Z0-9]+", "_", self.name.upper()).strip("_")

    @property
    def repo_path(self) -> str:
        """``owner/name`` part of the upstream URL, used under a mirror prefix."""
        return "/".join(self.repo.rstrip("/").removesuffix(".git").split("/")[-2:])


@dataclass(frozen=True, slots=True)
class ComfyLock:
    """The whole lock file: ComfyUI itself, the node packs, and the packs that must never be installed."""

    comfyui: PinnedRepo
    node_packs: tuple[PinnedRepo, ...]
    refused_node_packs: tuple[str, ...]

    @property
    def repos(self) -> tuple[PinnedRepo, ...]:
        return (self.comfyui, *self.node_packs)


def load_comfylock(path: Path) -> ComfyLock:
    """Read and validate ``path``; raises ComfyLockError naming the entry and field that is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ComfyLockError(f"{path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ComfyLockError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ComfyLockError(f"{path}: expected a mapping with 'version: 1'")
    comfyui = _repo(path, "comfyui", data.get("comfyui"))
    packs_raw = data.get("node_packs")
    if not isinstance(packs_raw, list):
        raise ComfyLockError(f"{path}: 'node_packs' must be a list")
    packs = tuple(_repo(path, f"node_packs[{i}]", item) for i, item in enumerate(packs_raw))
    refused = data.get("refused_node_packs", [])
    if not isinstance(refused, list) or not all(isinstance(r, str) for r in refused):
        raise ComfyLockError(f"{path}: 'refused_node_packs' must be a list of names")
    lock = ComfyLock(comfyui=comfyui, node_packs=packs, refused_node_packs=tuple(refused))
    names = [r.name.lower() for r in lock.repos]
    if len(set(names)) != len(names):
        raise ComfyLockError(f"{path}: repository names must be unique, got {names}")
    for pack in packs:
        if pack.name.lower() in {r.lower() for r in lock.refused_node_packs}:
            raise ComfyLockError(f"{path}: node pack {pack.name!r} is in refused_node_packs; remove it")
    return lock


def _repo(path: Path, where: str, raw: Any) -> PinnedRepo:
    if not isinstance(raw, dict):
        raise ComfyLockError(f"{path}: {where}: expected a mapping with name, repo, commit, version")
    fields = {key: str(raw.get(key, "")) for key in ("name", "repo", "commit", "version")}
    for key, value in fields.items():
        if not value or raw.get(key) is None:
            raise ComfyLockError(f"{path}: {where}: '{key}' is missing")
    if not _NAME.fullmatch(fields["name"]):
        raise ComfyLockError(f"{path}: {where}: name {fields['name']!r} is not a plain folder name")
    if not _COMMIT.fullmatch(fields["commit"]):
        raise ComfyLockError(
            f"{path}: {where}: commit {fields['commit']!r} is not a full 40-character lowercase hex hash"
        )
    avoid = tuple(_avoided(path, where, item) for item in raw.get("avoid") or [])
    for bad in avoid:
        if bad.commit == fields["commit"]:
            raise ComfyLockError(f"{path}: {where}: commit {bad.commit} is a known broken commit ({bad.reason})")
    return PinnedRepo(avoid=avoid, **fields)


def _avoided(path: Path, where: str, raw: Any) -> AvoidedCommit:
    if not isinstance(raw, dict) or not _COMMIT.fullmatch(str(raw.get("commit", ""))):
        raise ComfyLockError(f"{path}: {where}: each 'avoid' item needs a full 'commit' hash and a 'reason'")
    return AvoidedCommit(commit=str(raw["commit"]), reason=str(raw.get("reason", "")))
