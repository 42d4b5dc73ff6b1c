"""models.lock.yaml: the shipped file is valid and canonical; every schema break is named."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from tests.helpers.servers import REPO
from wanx.errors import LockfileError, UnknownWorkflowError
from wanx.lockfile import (
    LockEntry,
    Source,
    SourceKind,
    dump_lockfile,
    dumps_lockfile,
    load_lockfile,
    loads_lockfile,
)

SHIPPED = REPO / "models.lock.yaml"
SHA = "ab" * 32

GOOD = f"""\
version: 1
files:
- path: vae/a.safetensors
  workflows: [one]
  size: 3
  sha256: {SHA}
  sources:
  - kind: hf
    repo: owner/repo
    path: sub/a_upstream.safetensors
    revision: 0123456789abcdef0123456789abcdef01234567
  - kind: hf-mirror
  - kind: modelscope
    repo: owner/repo
    path: sub/a_upstream.safetensors
    revision: master
    verified: false
  - kind: url
    url: https://example.invalid/a
  - kind: local
    dir: /mnt/models
- path: text_encoders/b.safetensors
  workflows: [one, two]
  size: null
  sha256: null
  unresolved: nobody published it
  sources:
  - kind: url
    url: ${{WANX_MODELS_URL}}/b
"""


def _with(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


def test_shipped_lockfile_has_the_seven_files_the_workflows_use() -> None:
    lock = load_lockfile(SHIPPED)
    assert [e.path for e in lock.entries] == [
        "text_encoders/wan2.1/umt5-xxl-enc-bf16.safetensors",
        "diffusion_models/Wan2_1-I2V-14B-480P_fp8_e4m3fn.safetensors",
        "vae/wan2.1/Wan2_1_VAE_bf16.safetensors",
        "clip_vision/wan2.1/open-clip-xlm-roberta-large-vit-huge-14_visual_fp16.safetensors",
        "diffusion_models/wan21_vace_1_3_b.safetensors",
        "text_encoders/umt5_xxl_fp8_e4m3fn.safetensors",
        "vae/wan21_vace_vae.safetensors",
    ]
    assert lock.workflows == ("vace", "wanx-21")
    assert len(lock.select(["wanx-21"])) == 4
    assert len(lock.select(["vace"])) == 3


def test_shipped_lockfile_leaves_only_the_clip_file_unresolved() -> None:
    lock = load_lockfile(SHIPPED)
    unpinned = [e for e in lock.entries if not e.pinned]
    assert [e.path for e in unpinned] == [
        "clip_vision/wan2.1/open-clip-xlm-roberta-large-vit-huge-14_visual_fp16.safetensors"
    ]
    assert unpinned[0].unresolved and "--allow-unverified" in unpinned[0].unresolved
    hf = next(s for s in unpinned[0].sources if s.kind is SourceKind.HF)
    assert hf.revision is None


def test_shipped_lockfile_every_pinned_hf_source_has_a_full_commit() -> None:
    for entry in load_lockfile(SHIPPED).entries:
        kinds = [s.kind for s in entry.sources]
        assert kinds[:3] == [SourceKind.HF, SourceKind.HF_MIRROR, SourceKind.MODELSCOPE], entry.path
        hf = entry.sources[0]
        if entry.pinned:
            assert hf.revision and re.fullmatch(r"[0-9a-f]{40}", hf.revision), entry.path


def test_shipped_lockfile_names_the_renamed_upstream_files() -> None:
    renamed = {e.path: e.upstream_name for e in load_lockfile(SHIPPED).entries if e.upstream_name}
    assert renamed == {
        "diffusion_models/wan21_vace_1_3_b.safetensors": "wan2.1_vace_1.3B_fp16.safetensors",
        "text_encoders/umt5_xxl_fp8_e4m3fn.safetensors": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "vae/wan21_vace_vae.safetensors": "wan_2.1_vae.safetensors",
    }


def test_shipped_lockfile_marks_modelscope_paths_nobody_saw() -> None:
    unseen = {
        e.path
        for e in load_lockfile(SHIPPED).entries
        for s in e.sources
        if s.kind is SourceKind.MODELSCOPE and not s.verified
    }
    assert unseen == {
        "text_encoders/wan2.1/umt5-xxl-enc-bf16.safetensors",
        "clip_vision/wan2.1/open-clip-xlm-roberta-large-vit-huge-14_visual_fp16.safetensors",
        "diffusion_models/wan21_vace_1_3_b.safetensors",
    }


def test_shipped_lockfile_is_in_canonical_form() -> None:
    """`wanx models lock` rewrites the file with dumps_lockfile; a hand edit must not make that churn."""
    text = SHIPPED.read_text(encoding="utf-8")
    assert dumps_lockfile(loads_lockfile(text)) == text


def test_round_trip(tmp_path: Path) -> None:
    lock = loads_lockfile(GOOD)
    target = tmp_path / "models.lock.yaml"
    dump_lockfile(lock, target)
    assert load_lockfile(target) == lock
    assert [p.name for p in tmp_path.iterdir()] == ["models.lock.yaml"]


def test_parsed_values() -> None:
    lock = loads_lockfile(GOOD)
    first, second = lock.entries
    assert first == LockEntry(
        path="vae/a.safetensors",
        workflows=("one",),
        size=3,
        sha256=SHA,
        sources=first.sources,
    )
    assert first.sources[1] == Source(kind=SourceKind.HF_MIRROR)
    assert first.sources[2].verified is False
    assert first.upstream_name == "a_upstream.safetensors"
    assert second.pinned is False and second.unresolved == "nobody published it"
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.size = 4  # type: ignore[misc]


def test_select_keeps_file_order_and_refuses_unknown_names() -> None:
    lock = loads_lockfile(GOOD)
    assert [e.path for e in lock.select(["two"])] == ["text_encoders/b.safetensors"]
    assert lock.select([]) == lock.entries
    with pytest.raises(UnknownWorkflowError, match=r"--workflow nope: no such workflow .*expected one of: one, two"):
        lock.select(["two", "nope"])


def test_replace_entry() -> None:
    lock = loads_lockfile(GOOD)
    new = dataclasses.replace(lock.entries[1], size=5, sha256=SHA, unresolved=None)
    updated = lock.replace_entry(new)
    assert updated.entries[1] == new and updated.entries[0] == lock.entries[0]
    assert loads_lockfile(dumps_lockfile(updated)) == updated


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("files: [", r"not valid YAML", id="not-yaml"),
        pytest.param("- a\n", r"expected a mapping with 'version' and 'files', got list", id="not-mapping"),
        pytest.param(_with("version: 1", "version: 2"), r"unsupported version \(expected 1, got 2\)", id="version"),
        pytest.param("version: 1\nfiles: []\n", r"'files' must be a non-empty list", id="no-files"),
        pytest.param(_with("version: 1", "version: 1\nextra: 1"), r"unknown key 'extra'", id="top-key"),
        pytest.param(
            _with(f"sha256: {SHA}", f"sha256: {SHA[:-1]}"),
            r'entry "vae/a.safetensors": sha256 must be 64 lower-case hex characters \(got 63 characters\)',
            id="sha-short",
        ),
        pytest.param(
            _with(f"sha256: {SHA}", f"sha256: {SHA.upper()}"), r"sha256 must be 64 lower-case", id="sha-upper"
        ),
        pytest.param(_with("size: 3", "size: -1"), r"'size' must be a byte count or null", id="size-negative"),
        pytest.param(_with("size: 3", "size: '3'"), r"'size' must be a byte count", id="size-string"),
        pytest.param(
            _with("size: 3", "size: null"),
            r"size or sha256 is null without an 'unresolved:' reason",
            id="null-no-reason",
        ),
        pytest.param(_with("vae/a.safetensors", "../a.safetensors"), r"'path' .*not allowed", id="path-dotdot"),
        pytest.param(_with("vae/a.safetensors", "/abs/a.safetensors"), r"absolute path", id="path-absolute"),
        pytest.param(
            _with("vae/a.safetensors", "a.safetensors"), r"must start with the models/ subfolder", id="no-folder"
        ),
        pytest.param(_with("workflows: [one]", "workflows: []"), r"'workflows' must be a non-empty list", id="no-wf"),
        pytest.param(_with("workflows: [one]", "workflows: [One]"), r"not a plain lower-case name", id="wf-case"),
        pytest.param(_with("text_encoders/b.safetensors", "vae/a.safetensors"), r"listed twice", id="duplicate-path"),
        pytest.param(
            _with("kind: hf\n", "kind: s3\n"), r"sources\[0\]: unknown kind 's3' \(expected one of: hf,", id="kind"
        ),
        pytest.param(_with("repo: owner/repo", "repo: justname"), r"'repo' must be owner/name", id="repo"),
        pytest.param(
            _with("    revision: master\n", ""), r"'revision' is required for modelscope", id="modelscope-revision"
        ),
        pytest.param(_with("url: https://example.invalid/a", "url: ftp://x/a"), r"'url' must be an http", id="url"),
        pytest.param(_with("dir: /mnt/models", "url: /mnt/models"), r"\(local\): unknown key 'url'", id="local-key"),
        pytest.param(_with("verified: false", "verified: maybe"), r"'verified' must be true or false", id="verified"),
        pytest.param(
            _with("    path: sub/a_upstream.safetensors\n    revision: 0123", "    path: ../x\n    revision: 0123"),
            r"sources\[0\]: 'path' .*not allowed",
            id="source-path",
        ),
    ],
)
def test_schema_errors_name_the_file_entry_and_field(text: str, message: str) -> None:
    with pytest.raises(LockfileError, match=message) as info:
        loads_lockfile(text, name="models.lock.yaml")
    assert info.value.message.startswith("models.lock.yaml")
    assert info.value.hint


def test_hf_mirror_needs_something_to_mirror() -> None:
    text = GOOD.replace("  - kind: url\n    url: ${WANX_MODELS_URL}/b\n", "  - kind: hf-mirror\n")
    with pytest.raises(LockfileError, match=r'entry "text_encoders/b.safetensors": hf-mirror needs'):
        loads_lockfile(text)


def test_missing_file_is_a_lockfile_error(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match=r"cannot read the lock file"):
        load_lockfile(tmp_path / "absent.yaml")


def test_dump_is_plain_yaml() -> None:
    data = yaml.safe_load(dumps_lockfile(loads_lockfile(GOOD)))
    assert data["files"][0]["sources"][1] == {"kind": "hf-mirror"}
    assert data["files"][1]["size"] is None
