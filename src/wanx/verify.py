"""Check files on disk against the lock file (missing, wrong size, wrong sha256); trusts the state file unless full."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from wanx.fetch import Reporter
from wanx.lockfile import LockEntry
from wanx.state import FileRecord, StateFile
from wanx.transfer import hash_file

__all__ = ["Check", "VerifyResult", "verify"]


class Check(StrEnum):
    OK = "ok"
    TOFU = "ok, trust on first use"  # matches the hash recorded at its first download; the lock file pins none
    MISSING = "missing"
    WRONG_SIZE = "wrong size"
    WRONG_HASH = "wrong sha256"
    UNPINNED = "unverifiable"  # no hash in the lock file and none recorded here

    @property
    def good(self) -> bool:
        return self in (Check.OK, Check.TOFU)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    entry: LockEntry
    check: Check
    message: str
    sha256: str | None = None


def verify(
    entries: Sequence[LockEntry], models_dir: Path, reporter: Reporter, *, full: bool = False, jobs: int = 2
) -> list[VerifyResult]:
    """One result per entry, in order; files are hashed in parallel unless the state file vouches for them."""
    state = StateFile(models_dir)
    records = state.load()

    def one(entry: LockEntry) -> VerifyResult:
        return _verify_one(entry, models_dir, records.get(entry.path), state, reporter, full=full)

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="verify") as pool:
        return list(pool.map(one, entries))


def _verify_one(
    entry: LockEntry, models_dir: Path, record: FileRecord | None, state: StateFile, reporter: Reporter, *, full: bool
) -> VerifyResult:
    target = models_dir / entry.path
    if not target.is_file():
        return VerifyResult(entry, Check.MISSING, f"{entry.path}: missing (expected at {target})")
    size = target.stat().st_size
    if entry.size is not None and size != entry.size:
        return VerifyResult(entry, Check.WRONG_SIZE, f"{entry.path}: {size} bytes, expected {entry.size}")
    expected = entry.sha256 or (record.sha256 if record is not None and record.tofu else None)
    if expected is None:
        return VerifyResult(
            entry, Check.UNPINNED, f"{entry.path}: present, but neither the lock file nor a first download pins a hash"
        )
    good = Check.OK if entry.sha256 else Check.TOFU
    if not full and record is not None and record.matches(target) and record.sha256 == expected:
        return VerifyResult(entry, good, f"{entry.path}: {good} (state file)", expected)
    reporter.begin(entry, total=size, done=0, action="verify")
    sha = hash_file(target, lambda n: reporter.advance(entry, n))
    if sha != expected:
        state.drop(entry.path)
        return VerifyResult(entry, Check.WRONG_HASH, f"{entry.path}: sha256 {sha}, expected {expected}", sha)
    state.put(entry.path, FileRecord.of(target, sha, tofu=entry.sha256 is None))
    return VerifyResult(entry, good, f"{entry.path}: {good} (hashed)", sha)
