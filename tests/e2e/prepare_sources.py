"""Turn partial git snapshots of the pinned repositories into clone sources for `wanx install`.

For hosts that cannot reach GitHub but have read-only snapshots of the four repositories (git directories that
hold the pinned commits, possibly without a few large blobs). For each snapshot it makes a bare repository
``<out>/<name>.git`` that borrows the snapshot's objects (git alternates), has a branch at the pinned commit,
and, for every blob of the pinned tree that the snapshot lacks, a stand-in object under the original id whose
content says it is a placeholder. The commit checked out is exactly the pinned one; only those files differ.
Test set-up only: never use such a source for a real deployment.

    python -m tests.e2e.prepare_sources --out DIR ComfyUI=/path/to/snapshot.git ComfyUI-KJNodes=... ...
It prints one ``WANX_GIT_SOURCE_<KEY>=<dir>`` line per repository, for `wanx install`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import zlib
from pathlib import Path

from wanx.comfylock import load_comfylock

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = b"placeholder: this file's blob is missing from the local snapshot this clone was made from\n"


def git(git_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=check)


def prepare(name: str, snapshot: Path, commit: str, out: Path) -> tuple[Path, list[str]]:
    """Make ``out/<name>.git`` from ``snapshot``; return it and the paths that got placeholders."""
    target = out / f"{name}.git"
    if not target.exists():
        subprocess.run(["git", "init", "--quiet", "--bare", str(target)], check=True)
    (target / "objects" / "info" / "alternates").write_text(f"{(snapshot / 'objects').resolve()}\n")
    missing: list[str] = []
    for line in git(target, "ls-tree", "-r", "--full-tree", commit).stdout.splitlines():
        meta, path = line.split("\t", 1)
        _mode, kind, oid = meta.split()
        if kind == "blob" and git(target, "cat-file", "-e", oid, check=False).returncode != 0:
            _write_loose(target, oid, PLACEHOLDER)
            missing.append(path)
    git(target, "update-ref", "refs/heads/pinned", commit)
    git(target, "symbolic-ref", "HEAD", "refs/heads/pinned")
    return target, missing


def _write_loose(git_dir: Path, oid: str, data: bytes) -> None:
    # A stand-in stored under the missing id (git does not re-hash blobs on checkout).
    path = git_dir / "objects" / oid[:2] / oid[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zlib.compress(b"blob %d\0" % len(data) + data))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the prepared bare repositories")
    parser.add_argument("--lock", type=Path, default=REPO / "comfyui.lock.yaml")
    parser.add_argument("snapshots", nargs="+", help="NAME=GIT_DIR, NAME as in comfyui.lock.yaml")
    args = parser.parse_args(argv)
    lock = {repo.name: repo for repo in load_comfylock(args.lock).repos}
    args.out.mkdir(parents=True, exist_ok=True)
    for item in args.snapshots:
        name, _, git_dir = item.partition("=")
        if name not in lock:
            parser.error(f"{name}: not in {args.lock} (expected one of {sorted(lock)})")
        target, missing = prepare(name, Path(git_dir), lock[name].commit, args.out)
        for path in missing:
            print(f"# {name}: placeholder for {path}", file=sys.stderr)
        print(f"WANX_GIT_SOURCE_{lock[name].env_key}={target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
