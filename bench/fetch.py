"""Fetch benchmark on loopback, measured in one run against references:

1. fetch throughput of a 2 GiB file (wanx's fetcher: HEAD, stream, hash, fsync, rename) vs ``curl -o`` of the same URL;
2. verify throughput (wanx's hash_file) vs ``sha256sum`` on the same file;
3. the no-op re-run of ``wanx models fetch`` over the full seven-file set (sparse files of the lock's sizes).

Targets: fetch >= 0.8x curl, verify >= 0.9x sha256sum, no-op < 1 s. Prints one line per figure; exits 1 if a target
is missed. Everything it writes lives in a temp folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers.servers import free_port, run_process  # noqa: E402

from wanx.fetch import FetchOptions, FileResult, Status, fetch  # noqa: E402
from wanx.lockfile import LockEntry, Lockfile, Source, SourceKind, dump_lockfile, load_lockfile  # noqa: E402
from wanx.sources import Endpoints, SourceSettings  # noqa: E402
from wanx.state import FileRecord, StateFile  # noqa: E402
from wanx.transfer import hash_file  # noqa: E402

GiB = 2**30
COMMIT = "b" * 40
BLOCK = 64 * 2**20
CLIP_BENCH_SIZE = 700 * 2**20  # the real size is unresolved; any size shows the trust-on-first-use no-op path


class _Quiet:
    def begin(self, entry: LockEntry, *, total: int | None, done: int, action: str) -> None: ...
    def advance(self, entry: LockEntry, n: int) -> None: ...
    def note(self, entry: LockEntry, message: str) -> None: ...
    def end(self, result: FileResult) -> None: ...


def best(runs: int, once: Callable[[], float]) -> float:
    return min(once() for _ in range(runs))


def make_big(path: Path, size: int) -> None:
    """Random 64 MiB blocks (each distinct), so every byte is hashed and nothing compresses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(BLOCK, left)
            fh.write(os.urandom(n))
            left -= n


def bench_fetch(tmp: Path, base: str, big: Path, runs: int) -> tuple[float, float]:
    sha = hash_file(big)
    size = big.stat().st_size
    url = f"{base}/org/bench/resolve/{COMMIT}/big.safetensors"
    entry = LockEntry(
        path="diffusion_models/big.safetensors",
        workflows=("bench",),
        size=size,
        sha256=sha,
        sources=(Source(kind=SourceKind.HF, repo="org/bench", path="big.safetensors", revision=COMMIT),),
    )
    options = FetchOptions(models_dir=tmp / "models", settings=SourceSettings(endpoints=Endpoints(hf=base)))
    curl_out = tmp / "curl.out"

    def curl_once() -> float:
        start = time.perf_counter()
        subprocess.run(["curl", "-sS", "--fail", "-o", str(curl_out), url], check=True)
        took = time.perf_counter() - start
        curl_out.unlink()
        return took

    def wanx_once() -> float:
        shutil.rmtree(options.models_dir, ignore_errors=True)
        start = time.perf_counter()
        [result] = fetch([entry], options, _Quiet(), cancel=threading.Event())
        took = time.perf_counter() - start
        if result.status is not Status.FETCHED:
            raise SystemExit(f"bench fetch failed: {result.message}")
        shutil.rmtree(options.models_dir)
        return took

    curl_s, wanx_s = [], []
    for _ in range(runs):  # interleaved, so both see the same machine load
        curl_s.append(curl_once())
        wanx_s.append(wanx_once())
    return size / min(curl_s), size / min(wanx_s)


def bench_verify(big: Path, runs: int) -> tuple[float, float]:
    size = big.stat().st_size
    with open(big, "rb", buffering=0) as fh:  # warm the page cache for both
        while fh.read(BLOCK):
            pass

    def sha256sum_once() -> float:
        start = time.perf_counter()
        subprocess.run(["sha256sum", str(big)], check=True, capture_output=True)
        return time.perf_counter() - start

    def wanx_once() -> float:
        start = time.perf_counter()
        hash_file(big)
        return time.perf_counter() - start

    ref, ours = [], []
    for _ in range(runs):
        ref.append(sha256sum_once())
        ours.append(wanx_once())
    return size / min(ref), size / min(ours)


def zero_hashes(sizes: list[int]) -> dict[int, str]:
    """sha256 of N zero bytes for each N, in one pass up to the largest (sparse files read as zeros)."""
    out: dict[int, str] = {}
    sha = hashlib.sha256()
    zeros = bytes(BLOCK)
    done = 0
    for size in sorted(set(sizes)):
        while done < size:
            n = min(BLOCK, size - done)
            sha.update(zeros[:n])
            done += n
        out[size] = sha.copy().hexdigest()
    return out


def bench_noop(tmp: Path, runs: int) -> tuple[float, float]:
    """Seven sparse files of the shipped lock's sizes, their real sha256, state recorded as after a verified fetch."""
    shipped = load_lockfile(REPO / "models.lock.yaml")
    sizes = {e.path: e.size if e.size is not None else CLIP_BENCH_SIZE for e in shipped.entries}
    hashes = zero_hashes(list(sizes.values()))
    entries = tuple(
        dataclasses.replace(e, size=sizes[e.path], sha256=hashes[sizes[e.path]]) if e.pinned else e
        for e in shipped.entries
    )
    lockfile = tmp / "noop.lock.yaml"
    dump_lockfile(Lockfile(entries=entries), lockfile)
    models = tmp / "noop-models"
    state = StateFile(models)
    for entry in entries:
        target = models / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as fh:
            fh.truncate(sizes[entry.path])
        state.put(entry.path, FileRecord.of(target, hashes[sizes[entry.path]], tofu=not entry.pinned))
    total = sum(sizes.values())
    argv = [sys.executable, "-m", "wanx", "models", "fetch", "--lockfile", str(lockfile), "--models-dir", str(models)]

    def once() -> float:
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True)
        took = time.perf_counter() - start
        if result.returncode != 0 or "(0 fetched)" not in result.stderr:
            raise SystemExit(f"no-op fetch did not no-op:\n{result.stderr}")
        return took

    def in_process() -> float:
        options = FetchOptions(models_dir=models, settings=SourceSettings())
        start = time.perf_counter()
        results = fetch(entries, options, _Quiet())
        took = time.perf_counter() - start
        assert all(r.status is Status.PRESENT for r in results)
        return took

    print(f"no-op set: {len(entries)} files, {total / 1e9:.1f} GB (sparse)")
    return best(runs, once), best(runs, in_process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wanx-bench-fetch-", dir=os.environ.get("WANX_BENCH_TMP")))
    failed = False
    try:
        big = tmp / "hub" / "org" / "bench" / "big.safetensors"
        make_big(big, int(args.size_gib * GiB))
        port = free_port()
        server = [sys.executable, str(REPO / "tests/helpers/fake_hub.py"), "--port", str(port), "--root"]
        server += [str(tmp / "hub"), "--commit", COMMIT, "--lifetime", "1800"]
        with run_process(server, ready_url=f"http://127.0.0.1:{port}/__fake/requests", timeout=120):
            curl_bps, wanx_bps = bench_fetch(tmp, f"http://127.0.0.1:{port}", big, args.runs)
        ratio = wanx_bps / curl_bps
        failed |= ratio < 0.8
        print(
            f"fetch  {args.size_gib:g} GiB: wanx {wanx_bps / 1e6:7.0f} MB/s, curl -o {curl_bps / 1e6:7.0f} MB/s, "
            f"ratio {ratio:.2f} (target >= 0.80)"
        )
        ref_bps, ours_bps = bench_verify(big, args.runs)
        ratio = ours_bps / ref_bps
        failed |= ratio < 0.9
        print(
            f"verify {args.size_gib:g} GiB: wanx {ours_bps / 1e6:7.0f} MB/s, sha256sum {ref_bps / 1e6:7.0f} MB/s, "
            f"ratio {ratio:.2f} (target >= 0.90)"
        )
        big.unlink()
        cli_s, lib_s = bench_noop(tmp, args.runs)
        failed |= cli_s >= 1.0
        print(f"no-op re-run: `wanx models fetch` {cli_s:.2f} s end to end (target < 1 s), fetch() {lib_s:.3f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
