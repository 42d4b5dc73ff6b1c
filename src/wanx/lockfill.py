"""``wanx models lock``: fill null size, sha256 and hf revisions from the hub's own metadata (paths-info)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from wanx.errors import SourceUnavailable
from wanx.lockfile import LockEntry, Lockfile, SourceKind
from wanx.sources import SourceSettings, hub_facts

__all__ = ["LockChange", "fill_lockfile"]


@dataclass(frozen=True, slots=True)
class LockChange:
    path: str
    message: str
    changed: bool


def fill_lockfile(lock: Lockfile, settings: SourceSettings) -> tuple[Lockfile, list[LockChange]]:
    """Return the lock with every incomplete entry filled from its hf source, and what happened to each.

    Entries already pinned are left alone, except that a hub answer disagreeing with them is reported.
    """
    changes: list[LockChange] = []
    for entry in lock.entries:
        hf = next((s for s in entry.sources if s.kind is SourceKind.HF), None)
        incomplete = not entry.pinned or (hf is not None and hf.revision is None)
        if hf is None:
            if incomplete:
                changes.append(LockChange(entry.path, "no hf source to read metadata from; left as is", False))
            continue
        if not incomplete:
            continue
        try:
            facts = hub_facts(hf, settings)
        except SourceUnavailable as exc:
            changes.append(LockChange(entry.path, exc.message, False))
            continue
        if facts.sha256 is None:
            changes.append(LockChange(entry.path, "the hub has no LFS sha256 for this file; left as is", False))
            continue
        updated = _filled(entry, facts.revision, facts.size, facts.sha256)
        lock = lock.replace_entry(updated)
        changes.append(
            LockChange(entry.path, f"pinned revision {facts.revision}, {facts.size} bytes, sha256 {facts.sha256}", True)
        )
    return lock, changes


def _filled(entry: LockEntry, revision: str, size: int, sha256: str) -> LockEntry:
    sources = tuple(
        dataclasses.replace(s, revision=revision) if s.kind is SourceKind.HF and s.revision is None else s
        for s in entry.sources
    )
    return dataclasses.replace(entry, size=size, sha256=sha256, unresolved=None, sources=sources)
