"""The installer against real git repositories made in a temp dir and an offline index of tiny wheels."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers.gitrepos import PACKS, FakeStack, commit_files, git, make_repo, make_stack, write_lock
from tests.helpers.servers import PYTHON, REPO
from wanx.comfylock import load_comfylock
from wanx.errors import ConfigError, InstallError, PinMismatchError, RefusedNodePackError
from wanx.install import MODEL_FOLDERS, InstallSettings, Mode, clone_all, install_stack

pytestmark = pytest.mark.integration


def env_key(name: str) -> str:
    return name.upper().replace("-", "_")


@pytest.fixture
def stack(tmp_path: Path) -> FakeStack:
    return make_stack(tmp_path / "stack")


def settings_for(stack: FakeStack, prefix: Path, **overrides: object) -> InstallSettings:
    values: dict[str, object] = {
        "prefix": prefix,
        "lock_path": stack.lock,
        "constraints": stack.constraints,
        "models_dir": prefix.parent / "models",
        "mode": Mode.GPU,
        "sources": {env_key(name): path for name, path in stack.sources.items()},
        "pip_args": ("--no-index", "--find-links", str(stack.wheels)),
        "torch_spec": ("torch==0.0.1",),
        "python": PYTHON,
        "venv_args": ("--without-pip", "--system-site-packages"),  # the base pip, not a slow ensurepip
    }
    values.update(overrides)
    return InstallSettings(**values)  # type: ignore[arg-type]


def venv_versions(prefix: Path, *dists: str) -> list[str]:
    code = f"import importlib.metadata as m; print(*[m.version(d) for d in {list(dists)!r}])"
    out = subprocess.run([str(prefix / "venv/bin/python"), "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.slow
def test_full_install_pins_commits_requirements_and_paths(stack: FakeStack, tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    workflows = tmp_path / "workflows"
    (workflows / "api").mkdir(parents=True)
    (workflows / "api" / "vace.json").write_text("{}")

    result = install_stack(settings_for(stack, prefix, workflows_dir=workflows))

    assert git(prefix / "ComfyUI", "rev-parse", "HEAD").strip() == stack.commits["ComfyUI"]
    for name in PACKS:
        assert git(prefix / "ComfyUI/custom_nodes" / name, "rev-parse", "HEAD").strip() == stack.commits[name]
    # Torch lines dropped (else the offline pip fails), the no-newline files did not merge lines,
    # and the constraint held wanx-tiny-a at 1.0 although 2.0 is in the index.
    dists = ("wanx-tiny-a", "wanx-tiny-c", "wanx-tiny-d", "torch")  # torch: the --torch-spec install
    assert venv_versions(prefix, *dists) == ["1.0", "1.0", "1.0", "0.0.1"]
    requirements = (prefix / "requirements.txt").read_text()
    assert "torch" not in requirements
    assert "wanx-tiny-c\n# ComfyUI-KJNodes" in requirements
    extra = yaml.safe_load(result.extra_model_paths.read_text())["wanx"]
    assert extra["base_path"] == str(tmp_path / "models")
    assert extra["is_default"] is True
    assert {"diffusion_models", "text_encoders", "vae", "clip_vision"} <= set(extra) & set(MODEL_FOLDERS)
    assert "VHS_STRICT_PATHS=1" in result.env_file.read_text().splitlines()
    assert (prefix / "workflows/api/vace.json").read_text() == "{}"
    state = json.loads((prefix / "install.json").read_text())
    assert state["commits"] == stack.commits

    # A re-run keeps the clones and the venv; a constraint nothing satisfies fails loudly with pip's words.
    stack.constraints.write_text("wanx-tiny-a==9.9\n")
    with pytest.raises(InstallError, match=r"pip install -r .*requirements.txt: exit 1: .*wanx-tiny-a"):
        install_stack(settings_for(stack, prefix, workflows_dir=workflows))


def test_gpu_mode_without_torch_stops_before_pip_pulls_one(stack: FakeStack, tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="no torch in ComfyUI's venv") as caught:
        install_stack(settings_for(stack, tmp_path / "prefix", torch_spec=()))
    assert "--torch-spec" in caught.value.hint
    assert not (tmp_path / "prefix/requirements.txt").exists()


def test_clone_checks_out_each_pin(stack: FakeStack, tmp_path: Path) -> None:
    settings = settings_for(stack, tmp_path / "prefix")
    commits = clone_all(load_comfylock(stack.lock), settings)
    assert commits == stack.commits
    assert (
        git(settings.comfyui_dir / "custom_nodes/ComfyUI-KJNodes", "rev-parse", "HEAD").strip()
        == (stack.commits["ComfyUI-KJNodes"])
    )


def test_pin_missing_from_source_is_refused(stack: FakeStack, tmp_path: Path) -> None:
    other = tmp_path / "other"
    make_repo(other, {"main.py": "", "requirements.txt": ""})
    settings = settings_for(stack, tmp_path / "prefix")
    settings = settings_for(stack, tmp_path / "prefix", sources={**settings.sources, "COMFYUI": str(other)})
    with pytest.raises(PinMismatchError, match=f"ComfyUI: commit {stack.commits['ComfyUI']} is not in"):
        clone_all(load_comfylock(stack.lock), settings)


def test_existing_clone_at_another_commit_is_replaced(stack: FakeStack, tmp_path: Path) -> None:
    upstream = Path(stack.sources["ComfyUI-KJNodes"])
    newer = commit_files(upstream, {"nodes.py": "broken(\n"}, "newer, unpinned")
    settings = settings_for(stack, tmp_path / "prefix")
    clone = settings.comfyui_dir / "custom_nodes/ComfyUI-KJNodes"
    clone.parent.mkdir(parents=True)
    subprocess.run(["git", "clone", "--quiet", str(upstream), str(clone)], check=True)
    assert git(clone, "rev-parse", "HEAD").strip() == newer
    clone_all(load_comfylock(stack.lock), settings)
    assert git(clone, "rev-parse", "HEAD").strip() == stack.commits["ComfyUI-KJNodes"]
    assert not (clone / "nodes.py").exists()


def test_comfyui_manager_shipped_in_the_tree_is_refused(stack: FakeStack, tmp_path: Path) -> None:
    upstream = Path(stack.sources["ComfyUI"])
    files = {".gitignore": "", "custom_nodes/ComfyUI-Manager/__init__.py": ""}
    write_lock(stack.lock, {**stack.commits, "ComfyUI": commit_files(upstream, files, "add manager")})
    with pytest.raises(RefusedNodePackError, match="ComfyUI-Manager must never be installed"):
        install_stack(settings_for(stack, tmp_path / "prefix"))
    assert not (tmp_path / "prefix/venv").exists()  # refused before anything was installed


@pytest.mark.parametrize("folder", ["ComfyUI-Manager", "comfyui-manager.disabled"])
def test_comfyui_manager_added_to_custom_nodes_is_refused(stack: FakeStack, tmp_path: Path, folder: str) -> None:
    settings = settings_for(stack, tmp_path / "prefix")
    lock = load_comfylock(stack.lock)
    clone_all(lock, settings)
    (settings.comfyui_dir / "custom_nodes" / folder).mkdir()
    with pytest.raises(RefusedNodePackError, match=folder):
        clone_all(lock, settings)


def test_mirror_folder_of_owner_name_clones(stack: FakeStack, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(stack.root / "upstream", mirror)
    settings = settings_for(stack, tmp_path / "prefix", sources={}, mirror=str(mirror))
    assert clone_all(load_comfylock(stack.lock), settings) == stack.commits


def test_mirror_without_the_repo_says_what_to_clone(stack: FakeStack, tmp_path: Path) -> None:
    settings = settings_for(stack, tmp_path / "prefix", sources={}, mirror=str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="no clone of ComfyUI there"):
        clone_all(load_comfylock(stack.lock), settings)


def test_install_script_fails_loudly_without_wanx(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(REPO / "scripts/install-comfyui.sh"), "--prefix", str(tmp_path)],
        env={"PATH": "/usr/bin:/bin", "WANX": "wanx-not-installed"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "the wanx command (wanx-not-installed) is not on PATH" in proc.stderr


def test_install_script_passes_lock_and_constraints(stack: FakeStack, tmp_path: Path) -> None:
    # The script hands over to `wanx install` with this checkout's lock and constraints by mode.
    fake = tmp_path / "bin" / "wanx"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    proc = subprocess.run(
        ["bash", str(REPO / "scripts/install-comfyui.sh"), "--cpu", "--prefix", "/p"],
        env={"PATH": f"{fake.parent}:/usr/bin:/bin", "WANX": str(fake)},
        capture_output=True,
        text=True,
        check=True,
    )
    args = proc.stdout.splitlines()
    assert args[args.index("--lock") + 1] == str(REPO / "comfyui.lock.yaml")
    assert args[args.index("--constraints") + 1] == str(REPO / "constraints/comfyui-cpu.txt")
    assert args[-3:] == ["--cpu", "--prefix", "/p"]
