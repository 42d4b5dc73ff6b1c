"""Preloading: install, upgrade what the user did not touch, never overwrite a user's file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wanx.errors import ConfigError
from wanx.workflows.install import MANIFEST_NAME, InstallAction, install_workflows


def _shipped(folder: Path, **files: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        path = folder / f"{name}.json"
        path.write_text(text)
        paths.append(path)
    return paths


def _actions(results: list) -> dict[str, InstallAction]:  # type: ignore[type-arg]
    return {r.name: r.action for r in results}


def test_install_then_upgrade(tmp_path: Path) -> None:
    user = tmp_path / "user"
    target = user / "default" / "workflows"
    v1 = _shipped(tmp_path / "v1", a='{"v": 1}', b='{"v": 1}')
    assert _actions(install_workflows(v1, user)) == {"a.json": "installed", "b.json": "installed"}
    assert (target / "a.json").read_text() == '{"v": 1}'
    assert _actions(install_workflows(v1, user)) == {"a.json": "unchanged", "b.json": "unchanged"}

    (target / "b.json").write_text('{"v": 1, "mine": true}')  # the user edits a shipped workflow
    (target / "my own.json").write_text("{}")  # and saves one of their own
    v2 = _shipped(tmp_path / "v2", a='{"v": 2}', b='{"v": 2}')
    assert _actions(install_workflows(v2, user)) == {"a.json": "updated", "b.json": "kept"}
    assert (target / "a.json").read_text() == '{"v": 2}'
    assert (target / "b.json").read_text() == '{"v": 1, "mine": true}'
    assert (target / "my own.json").read_text() == "{}"
    # still the user's on the next start, even though the shipped one did not change again
    assert _actions(install_workflows(v2, user))["b.json"] == "kept"


def test_file_of_the_same_name_that_we_never_wrote_is_kept(tmp_path: Path) -> None:
    user = tmp_path / "user"
    target = user / "default" / "workflows"
    target.mkdir(parents=True)
    (target / "vace.json").write_text('{"theirs": true}')
    results = install_workflows(_shipped(tmp_path / "s", vace='{"ours": true}'), user)
    assert _actions(results) == {"vace.json": "kept"}
    assert (target / "vace.json").read_text() == '{"theirs": true}'


def test_deleted_file_comes_back_and_manifest_is_outside_the_list(tmp_path: Path) -> None:
    user = tmp_path / "user"
    sources = _shipped(tmp_path / "s", a="{}")
    install_workflows(sources, user)
    (user / "default" / "workflows" / "a.json").unlink()
    assert _actions(install_workflows(sources, user)) == {"a.json": "installed"}
    manifest = json.loads((user / "default" / MANIFEST_NAME).read_text())
    assert manifest["version"] == 1 and set(manifest["files"]) == {"a.json"}
    assert sorted(p.name for p in (user / "default" / "workflows").iterdir()) == ["a.json"]


def test_corrupt_manifest_is_a_clear_error(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "default").mkdir(parents=True)
    (user / "default" / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable workflow manifest") as info:
        install_workflows(_shipped(tmp_path / "s", a="{}"), user)
    assert "Delete it" in info.value.hint
