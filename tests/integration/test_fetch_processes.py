"""Fetches that are killed, interrupted or run twice at once; entries without a pin; `wanx models lock`."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.models_env import COMMIT, Spec, World, add_to_hub, lock_entry, wait_for, world, write_lock
from wanx.fetch import partial_path
from wanx.lockfile import load_lockfile
from wanx.state import STATE_NAME

pytestmark = pytest.mark.integration


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as built:
        yield built


def _partial_size(w: World, index: int) -> int:
    entry = load_lockfile(w.lockfile).entries[index]
    partial = partial_path(w.models, entry)
    return partial.stat().st_size if partial.exists() else 0


def _big(w: World) -> Spec:
    """A 9 MB file whose first 5 MB come fast and the rest slowly, so a fetch can be stopped in the middle.

    The fetcher writes whole 4 MiB buffers, so a partial file grows in 4 MiB steps.
    """
    big = Spec("diffusion_models/big.safetensors", "org/two", "big.safetensors", ("big",), os.urandom(9_000_000))
    add_to_hub(w.hub, [big])
    write_lock(w.lockfile, [lock_entry(big)])
    knobs = w.hub.knobs(big.repo, big.upstream)
    knobs.slow_after = 5_000_000
    knobs.slow_s = 0.05
    return big


def test_resume_after_sigkill_mid_file(w: World) -> None:
    big = _big(w)
    proc = w.spawn("fetch")
    try:
        wait_for(lambda: _partial_size(w, 0) >= 4 * 2**20, what="a 4 MiB partial")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    kept = _partial_size(w, 0)
    assert 4 * 2**20 <= kept < len(big.data)
    assert not w.target(big).exists()  # nothing at the final path

    w.hub.knobs(big.repo, big.upstream).slow_s = 0.0
    result = w.run("fetch")
    assert result.returncode == 0, result.stderr
    assert w.target(big).read_bytes() == big.data
    assert f"resuming at {kept} bytes" in result.stderr
    assert w.hub.ranges(big.upstream)[-1] == f"bytes={kept}-"
    assert _partial_size(w, 0) == 0


def test_ctrl_c_leaves_a_resumable_partial_and_exits_130(w: World) -> None:
    big = _big(w)
    proc = w.spawn("fetch")
    try:
        wait_for(lambda: _partial_size(w, 0) >= 4 * 2**20, what="a 4 MiB partial")
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert "fetch interrupted" in stderr and "resume when you run the same command again" in stderr
    assert "partial downloads of diffusion_models/big.safetensors" in stderr
    assert "Traceback" not in stderr
    assert not w.target(big).exists()
    assert 4 * 2**20 <= _partial_size(w, 0) < len(big.data)


def test_two_concurrent_fetches_download_each_file_once(w: World) -> None:
    for spec in w.specs:
        w.hub.knobs(spec.repo, spec.upstream).slow_s = 0.005
    first = w.spawn("fetch", "--source", "hf")
    second = w.spawn("fetch", "--source", "hf")
    out1 = first.communicate(timeout=120)
    out2 = second.communicate(timeout=120)
    assert first.returncode == 0, out1[1]
    assert second.returncode == 0, out2[1]
    for spec in w.specs:
        assert w.target(spec).read_bytes() == spec.data
        whole = [r for r in w.hub.requests if r["method"] == "GET" and str(r["path"]).endswith(spec.upstream)]
        assert len(whole) == 1, spec.path  # the loser of the lock found the file verified
    assert "another wanx fetch is writing this file; waiting for it" in out1[1] + out2[1]


def test_unpinned_entry_needs_allow_unverified_then_is_trusted_on_first_use(w: World) -> None:
    entries = [lock_entry(s) for s in w.specs]
    entries[0] = lock_entry(w.specs[0], pinned=False)
    write_lock(w.lockfile, entries)
    spec = w.specs[0]

    listed = w.run("list")
    assert "UNRESOLVED" in listed.stderr and "vae/a.safetensors" in listed.stderr

    refused = w.run("fetch", "--workflow", "one")
    assert refused.returncode == 1
    assert "vae/a.safetensors: the lock file pins no sha256" in refused.stderr
    assert "--allow-unverified" in refused.stderr
    assert w.gets() == 0  # refused before anything was downloaded

    tofu = w.run("fetch", "--workflow", "one", "--allow-unverified")
    assert tofu.returncode == 0, tofu.stderr
    sha = hashlib.sha256(spec.data).hexdigest()
    assert f"trusting sha256 {sha} (trust on first use)" in tofu.stderr
    assert '"tofu": true' in (w.models / STATE_NAME).read_text()

    again = w.run("fetch", "--workflow", "one")  # present and recorded: no flag needed, nothing fetched
    assert again.returncode == 0, again.stderr
    verified = w.run("verify", "--workflow", "one", "--full")
    assert verified.returncode == 0, verified.stderr
    assert "ok, trust on first use" in verified.stderr

    # Upstream changes the bytes; the local copy is lost: the recorded hash refuses the new bytes.
    w.target(spec).unlink()
    w.hub.add(spec.repo, spec.upstream, os.urandom(len(spec.data)), commit=COMMIT, alias=spec.path)
    changed = w.run("fetch", "--workflow", "one", "--allow-unverified")
    assert changed.returncode == 1
    assert "differs from the one first recorded here" in changed.stderr
    assert not w.target(spec).exists()


def test_lock_fills_size_sha256_and_revision_from_paths_info(w: World) -> None:
    entries = [lock_entry(s) for s in w.specs]
    entries[0] = lock_entry(w.specs[0], pinned=False, hf_revision=None)
    write_lock(w.lockfile, entries)

    result = w.run("lock")
    assert result.returncode == 0, result.stderr
    filled = load_lockfile(w.lockfile).entries[0]
    assert filled.size == len(w.specs[0].data)
    assert filled.sha256 == hashlib.sha256(w.specs[0].data).hexdigest()
    assert filled.unresolved is None
    assert filled.sources[0].revision == COMMIT
    assert filled.sources[1].repo is None  # the bare hf-mirror source stays bare
    posts = [r["path"] for r in w.hub.requests if r["method"] == "POST"]
    assert f"/api/models/org/one/paths-info/{COMMIT}" in posts
    assert load_lockfile(w.lockfile).entries[1:] == tuple(entries[1:])

    again = w.run("lock")
    assert again.returncode == 0 and "nothing to fill in" in again.stderr


def test_lock_reports_a_file_the_hub_does_not_have(w: World) -> None:
    entries = [lock_entry(s) for s in w.specs]
    entries[1] = lock_entry(w.specs[1], pinned=False)
    write_lock(w.lockfile, entries)
    w.hub.knobs(w.specs[1].repo, w.specs[1].upstream).missing = True
    result = w.run("lock")
    assert result.returncode == 1
    assert "text_encoders/wan2.1/b.safetensors" in result.stderr and "no such file at revision" in result.stderr
    assert load_lockfile(w.lockfile).entries[1].sha256 is None
