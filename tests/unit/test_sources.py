"""Source resolution: endpoints, ${VAR} expansion, --source ordering, and who gets the Hugging Face token."""

from __future__ import annotations

from pathlib import Path

from wanx.lockfile import LockEntry, Source, SourceKind
from wanx.sources import SourceSettings, origins_for

REV = "a" * 40
ENTRY = LockEntry(
    path="vae/x.safetensors",
    workflows=("one",),
    size=1,
    sha256="b" * 64,
    sources=(
        Source(kind=SourceKind.HF, repo="org/repo", path="split/x up.safetensors", revision=REV),
        Source(kind=SourceKind.HF_MIRROR),
        Source(kind=SourceKind.MODELSCOPE, repo="org/repo", path="split/x up.safetensors", revision="master"),
        Source(kind=SourceKind.URL, url="${WANX_MODELS_URL}/vae/x.safetensors"),
        Source(kind=SourceKind.LOCAL, dir="${WANX_MODELS_LOCAL_DIR}"),
    ),
)
ENV = {
    "HF_ENDPOINT": "http://127.0.0.1:1/",
    "HF_TOKEN": "hf_secret",
    "WANX_HF_MIRROR_ENDPOINT": "http://127.0.0.1:2",
    "WANX_MODELSCOPE_ENDPOINT": "http://127.0.0.1:3",
    "WANX_MODELS_URL": "http://127.0.0.1:4/files/",
}


def test_every_kind_resolves_to_its_endpoint() -> None:
    origins, skipped = origins_for(ENTRY, SourceSettings.from_env(ENV))
    assert [o.url for o in origins] == [
        f"http://127.0.0.1:1/org/repo/resolve/{REV}/split/x%20up.safetensors",
        f"http://127.0.0.1:2/org/repo/resolve/{REV}/split/x%20up.safetensors",
        "http://127.0.0.1:3/models/org/repo/resolve/master/split/x%20up.safetensors",
        "http://127.0.0.1:4/files/vae/x.safetensors",
    ]
    assert skipped == ["local: ${WANX_MODELS_LOCAL_DIR} is not set"]


def test_only_the_hub_itself_gets_the_token() -> None:
    origins, _ = origins_for(ENTRY, SourceSettings.from_env(ENV))
    auth = [o.headers.get("authorization") for o in origins]
    assert auth == ["Bearer hf_secret", None, None, None]
    assert "hf_secret" not in repr(SourceSettings.from_env(ENV))


def test_source_flag_restricts_and_orders(tmp_path: Path) -> None:
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "x.safetensors").write_bytes(b"x")
    settings = SourceSettings.from_env({**ENV, "WANX_MODELS_LOCAL_DIR": str(tmp_path)})
    origins, _ = origins_for(ENTRY, settings, kinds=(SourceKind.LOCAL, SourceKind.MODELSCOPE))
    assert [o.source.kind for o in origins] == [SourceKind.LOCAL, SourceKind.MODELSCOPE]
    assert origins[0].local == tmp_path / "vae" / "x.safetensors"


def test_local_dir_flag_comes_first_and_absent_files_are_skipped(tmp_path: Path) -> None:
    settings = SourceSettings.from_env(ENV, local_dirs=[tmp_path])
    origins, skipped = origins_for(ENTRY, settings, kinds=(SourceKind.LOCAL,))
    assert origins == []
    assert skipped[0] == f"local: {tmp_path}/vae/x.safetensors is not there"


def test_defaults_are_the_public_hubs() -> None:
    origins, _ = origins_for(ENTRY, SourceSettings.from_env({}), kinds=(SourceKind.HF, SourceKind.HF_MIRROR))
    assert [str(o.url).split("/org/")[0] for o in origins] == ["https://huggingface.co", "https://hf-mirror.com"]
