"""comfyui.lock.yaml: the shipped file loads, and each kind of bad entry is refused with its location."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.servers import REPO
from wanx.comfylock import load_comfylock
from wanx.errors import ComfyLockError

GOOD = "a" * 40


def test_shipped_lock_pins_v0_3_76_and_the_three_packs() -> None:
    lock = load_comfylock(REPO / "comfyui.lock.yaml")
    assert lock.comfyui.repo == "https://github.com/Comfy-Org/ComfyUI"
    assert lock.comfyui.commit == "30c259cac8c08ff8d015f9aff3151cb525c9b702"
    assert lock.comfyui.version == "0.3.76"
    assert {p.name: p.commit for p in lock.node_packs} == {
        "ComfyUI-WanVideoWrapper": "ea183da9ba8f5a053c89ce08cae30f8bbdabfeb9",
        "ComfyUI-KJNodes": "f9118e0bbb39347ea7becb84ec03e397dfb4f644",
        "ComfyUI-VideoHelperSuite": "a7ce59e381934733bfae03b1be029756d6ce936d",
    }
    assert lock.refused_node_packs == ("ComfyUI-Manager",)
    assert [p.env_key for p in lock.repos] == [
        "COMFYUI",
        "COMFYUI_WANVIDEOWRAPPER",
        "COMFYUI_KJNODES",
        "COMFYUI_VIDEOHELPERSUITE",
    ]
    assert lock.node_packs[1].repo_path == "kijai/ComfyUI-KJNodes"


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "comfyui.lock.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def base(**pack: object) -> dict[str, object]:
    entry = {"name": "Pack", "repo": "https://github.com/o/Pack", "commit": GOOD, "version": "1"} | pack
    return {
        "version": 1,
        "comfyui": {"name": "ComfyUI", "repo": "https://github.com/o/ComfyUI", "commit": GOOD, "version": "0.3.76"},
        "node_packs": [entry],
        "refused_node_packs": ["ComfyUI-Manager"],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"commit": "abc123"}, "node_packs\\[0\\]: commit 'abc123' is not a full 40-character", id="short"),
        pytest.param({"commit": "A" * 40}, "not a full 40-character lowercase", id="uppercase"),
        pytest.param({"version": None}, "node_packs\\[0\\]: 'version' is missing", id="no-version"),
        pytest.param({"name": "../escape"}, "is not a plain folder name", id="path-name"),
        pytest.param({"name": "ComfyUI-Manager"}, "'ComfyUI-Manager' is in refused_node_packs", id="manager"),
        pytest.param({"avoid": [{"commit": GOOD, "reason": "SyntaxError"}]}, "known broken commit", id="avoided"),
        pytest.param({"avoid": [{"commit": "short"}]}, "each 'avoid' item needs a full", id="bad-avoid"),
    ],
)
def test_bad_entries_are_refused(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(ComfyLockError, match=message):
        load_comfylock(write(tmp_path, base(**change)))


def test_wrong_version_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ComfyLockError, match="expected a mapping with 'version: 1'"):
        load_comfylock(write(tmp_path, {**base(), "version": 2}))
    with pytest.raises(ComfyLockError, match="cannot read"):
        load_comfylock(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("comfyui: [\n")
    with pytest.raises(ComfyLockError, match="not valid YAML"):
        load_comfylock(tmp_path / "bad.yaml")


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    data = base(name="ComfyUI")
    with pytest.raises(ComfyLockError, match="names must be unique"):
        load_comfylock(write(tmp_path, data))
