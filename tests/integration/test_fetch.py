"""`wanx models fetch|verify|list` as a subprocess against a fake hub on 127.0.0.1: the everyday paths."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fake_hub import FakeHub
from tests.helpers.models_env import (
    COMMIT,
    Spec,
    World,
    add_to_hub,
    dead_endpoint,
    lock_entry,
    world,
    write_lock,
)
from tests.helpers.servers import run_app
from wanx.state import STATE_NAME

pytestmark = pytest.mark.integration


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as built:
        yield built


def _finals(w: World) -> dict[str, bytes]:
    return {s.path: w.target(s).read_bytes() for s in w.specs if w.target(s).exists()}


def _leftovers(w: World) -> list[str]:
    return sorted(p.name for p in w.models.rglob("*.partial"))


def test_fetch_places_every_file_verified_and_a_rerun_costs_no_request(w: World) -> None:
    first = w.run("fetch")
    assert first.returncode == 0, first.stderr
    assert _finals(w) == {s.path: s.data for s in w.specs}
    assert "all 3 files present and verified (3 fetched)" in first.stderr
    assert _leftovers(w) == []
    state = json.loads((w.models / STATE_NAME).read_text())
    assert state["version"] == 1 and set(state["files"]) == {s.path for s in w.specs}
    assert {"size", "mtime_ns", "inode", "sha256"} <= set(state["files"]["vae/a.safetensors"])

    requests_before = len(w.hub.requests)
    again = w.run("fetch")
    assert again.returncode == 0, again.stderr
    assert "(0 fetched)" in again.stderr
    assert len(w.hub.requests) == requests_before  # the state file answered; nothing was asked of any source


def test_hf_is_asked_with_the_pinned_revision_and_upstream_name(w: World) -> None:
    assert w.run("fetch", "--workflow", "one").returncode == 0
    paths = {r["path"] for r in w.hub.requests if r["method"] == "GET"}
    assert f"/org/one/resolve/{COMMIT}/split/a_upstream.safetensors" in paths
    assert all("/models/" not in str(p) and "/files/" not in str(p) for p in paths)


def test_workflow_selects_only_its_files(w: World) -> None:
    result = w.run("fetch", "--workflow", "two")
    assert result.returncode == 0, result.stderr
    assert set(_finals(w)) == {"text_encoders/wan2.1/b.safetensors", "diffusion_models/c.safetensors"}


def test_unknown_workflow_is_one_clear_line(w: World) -> None:
    result = w.run("fetch", "--workflow", "nope")
    assert result.returncode == 1
    assert "--workflow nope: no such workflow in the lock file (expected one of: one, two)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not w.models.exists() or _finals(w) == {}


def test_falls_back_when_hf_is_unreachable(w: World) -> None:
    result = w.run("fetch", env={"HF_ENDPOINT": dead_endpoint()})
    assert result.returncode == 0, result.stderr
    assert _finals(w) == {s.path: s.data for s in w.specs}
    assert "unreachable" in result.stderr


def test_falls_back_past_a_404_and_a_429(tmp_path: Path, w: World) -> None:
    empty = FakeHub(tmp_path / "empty")
    add_to_hub(empty, w.specs[:1])  # knows org/one, but not b.safetensors
    empty.knobs("org/one", "split/a_upstream.safetensors").statuses = [429]
    with run_app(empty.make_app) as empty_base:
        result = w.run("fetch", "--workflow", "one", env={"HF_ENDPOINT": empty_base})
    assert result.returncode == 0, result.stderr
    assert "not found on the server (404)" in result.stderr
    assert "HTTP 429" in result.stderr
    assert set(_finals(w)) == {"vae/a.safetensors", "text_encoders/wan2.1/b.safetensors"}


def test_a_source_serving_other_bytes_is_refused_and_the_next_one_used(tmp_path: Path, w: World) -> None:
    liar = FakeHub(tmp_path / "liar")
    add_to_hub(liar, w.specs)
    for spec in w.specs:
        liar.knobs(spec.repo, spec.upstream).wrong_bytes = True
    with run_app(liar.make_app) as liar_base:
        only = w.run("fetch", "--source", "hf", env={"HF_ENDPOINT": liar_base})
        assert only.returncode == 1
        assert "delivered bytes with sha256" in only.stderr and "the lock file pins" in only.stderr
        assert "3 of 3 files could not be fetched and verified" in only.stderr
        assert _finals(w) == {} and _leftovers(w) == []

        fallback = w.run("fetch", env={"HF_ENDPOINT": liar_base})
    assert fallback.returncode == 0, fallback.stderr
    assert _finals(w) == {s.path: s.data for s in w.specs}


def test_a_hub_publishing_another_hash_is_skipped_before_downloading(tmp_path: Path, w: World) -> None:
    """Upstream replaced the file in place: the HEAD's X-Linked-Etag differs from the pin, so no bytes are pulled."""
    other = FakeHub(tmp_path / "other")
    for spec in w.specs:
        other.add(spec.repo, spec.upstream, bytes(len(spec.data)), commit=COMMIT)
    with run_app(other.make_app) as other_base:
        result = w.run("fetch", "--workflow", "one", env={"HF_ENDPOINT": other_base})
        gets = [r for r in other.requests if r["method"] == "GET"]
    assert result.returncode == 0, result.stderr
    assert "publishes sha256" in result.stderr
    assert gets == []


def test_redirect_to_cdn_and_cut_body_resume_within_one_run(w: World) -> None:
    """The hub's 302 to its CDN is followed; a body cut mid-way resumes with Range from the last byte received."""
    big = Spec("diffusion_models/big.safetensors", "org/two", "big.safetensors", ("big",), os.urandom(2_000_000))
    add_to_hub(w.hub, [big])
    write_lock(w.lockfile, [lock_entry(big)])
    knobs = w.hub.knobs(big.repo, big.upstream)
    knobs.redirect = True
    knobs.cut_after = 1_234_567
    result = w.run("fetch", "--source", "hf")
    assert result.returncode == 0, result.stderr
    assert w.target(big).read_bytes() == big.data
    cdn = f"/__cdn/{w.hub.files[(big.repo, big.upstream)].sha256}"
    assert w.hub.ranges(cdn) == [None, "bytes=1234567-"]


def test_server_ignoring_range_restarts_the_hash(w: World) -> None:
    spec = w.specs[2]
    knobs = w.hub.knobs(spec.repo, spec.upstream)
    knobs.cut_after = 700_000
    knobs.ignore_range = True
    result = w.run("fetch", "--workflow", "two", "--source", "hf")
    assert result.returncode == 0, result.stderr
    assert w.target(spec).read_bytes() == spec.data


def test_modelscope_and_plain_url_sources(w: World) -> None:
    dead = dead_endpoint()
    ms = w.run("fetch", "--workflow", "one", env={"HF_ENDPOINT": dead, "WANX_HF_MIRROR_ENDPOINT": dead})
    assert ms.returncode == 0, ms.stderr
    assert any(str(r["path"]).startswith("/models/org/one/resolve/master/") for r in w.hub.requests)

    url = w.run("fetch", "--workflow", "two", "--source", "url")
    assert url.returncode == 0, url.stderr
    assert any(r["path"] == "/files/diffusion_models/c.safetensors" for r in w.hub.requests)


def test_local_directory_source(tmp_path: Path, w: World) -> None:
    nas = tmp_path / "nas"
    for spec in w.specs:
        (nas / spec.path).parent.mkdir(parents=True, exist_ok=True)
        (nas / spec.path).write_bytes(spec.data)
    dead = dead_endpoint()
    cut_off = {"HF_ENDPOINT": dead, "WANX_HF_MIRROR_ENDPOINT": dead, "WANX_MODELSCOPE_ENDPOINT": dead}
    result = w.run("fetch", "--workflow", "one", env={**cut_off, "WANX_MODELS_LOCAL_DIR": str(nas)})
    assert result.returncode == 0, result.stderr
    assert set(_finals(w)) == {"vae/a.safetensors", "text_encoders/wan2.1/b.safetensors"}

    (nas / w.specs[2].path).write_bytes(b"x" * len(w.specs[2].data))  # right size, wrong bytes: refused
    flag = w.run("fetch", "--workflow", "two", "--source", "local", "--local-dir", str(nas))
    assert flag.returncode == 1
    assert "diffusion_models/c.safetensors" in flag.stderr and "the lock file pins" in flag.stderr
    assert not w.target(w.specs[2]).exists()


def test_corrupted_file_is_reported_then_repaired(w: World) -> None:
    assert w.run("fetch").returncode == 0
    spec = w.specs[0]
    target = w.target(spec)
    stat = target.stat()
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: only --full can tell

    trusted = w.run("verify")
    assert trusted.returncode == 0, trusted.stderr  # documented: the state file is trusted unless --full
    full = w.run("verify", "--full")
    assert full.returncode == 1
    assert "vae/a.safetensors: sha256" in full.stderr and "1 of 3 files are not verified" in full.stderr

    repaired = w.run("fetch")
    assert repaired.returncode == 0, repaired.stderr
    assert "repairing" in repaired.stderr
    assert target.read_bytes() == spec.data
    assert w.run("verify", "--full").returncode == 0


def test_verify_reports_missing_and_wrong_size(w: World) -> None:
    assert w.run("fetch").returncode == 0
    w.target(w.specs[1]).unlink()
    with open(w.target(w.specs[2]), "ab") as fh:
        fh.write(b"!")
    result = w.run("verify", "--json")
    assert result.returncode == 1
    checks = {d["path"]: d["check"] for d in map(json.loads, result.stdout.splitlines())}
    assert checks == {
        "vae/a.safetensors": "ok",
        "text_encoders/wan2.1/b.safetensors": "missing",
        "diffusion_models/c.safetensors": "wrong_size",
    }


def test_list_shows_entries_and_disk_state(w: World) -> None:
    assert w.run("fetch", "--workflow", "one").returncode == 0
    result = w.run("list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {d["path"]: d for d in map(json.loads, result.stdout.splitlines())}
    assert rows["vae/a.safetensors"]["on_disk"] == "verified"
    assert rows["vae/a.safetensors"]["upstream_name"] == "a_upstream.safetensors"
    assert rows["diffusion_models/c.safetensors"]["on_disk"] == "missing"


def test_malformed_lockfile_is_one_line_naming_the_file(w: World) -> None:
    w.lockfile.write_text(w.lockfile.read_text().replace("size: 300000", "size: lots"))
    result = w.run("fetch")
    assert result.returncode == 1
    assert f"{w.lockfile}: entry \"vae/a.safetensors\": 'size' must be a byte count or null" in result.stderr
    assert "Traceback" not in result.stderr


def test_not_enough_disk_space_is_refused_before_any_download(w: World) -> None:
    huge = [lock_entry(s) for s in w.specs]
    huge[2] = huge[2].__class__(**{**{f: getattr(huge[2], f) for f in huge[2].__slots__}, "size": 2**60})
    write_lock(w.lockfile, huge)
    result = w.run("fetch")
    assert result.returncode == 1
    assert "needed for the files still to fetch" in result.stderr and "GiB free" in result.stderr
    assert w.gets() == 0
