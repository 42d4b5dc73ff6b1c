"""Real git repositories and tiny wheels made in a temp dir, standing in for ComfyUI, its node packs and PyPI."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

GIT_ENV = {
    "GIT_AUTHOR_NAME": "wanx tests",
    "GIT_AUTHOR_EMAIL": "tests@wanx.invalid",
    "GIT_COMMITTER_NAME": "wanx tests",
    "GIT_COMMITTER_EMAIL": "tests@wanx.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def make_repo(path: Path, files: dict[str, str]) -> str:
    """Create a git repository at ``path`` with ``files`` in one commit; return the commit hash."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    return commit_files(path, files, "initial")


def commit_files(path: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "--quiet", "-m", message)
    return git(path, "rev-parse", "HEAD").strip()


def make_wheel(folder: Path, name: str, version: str) -> Path:
    """Write a minimal pure-Python wheel ``name==version`` (one module named after it) into ``folder``."""
    module = name.replace("-", "_")
    dist = f"{module}-{version}"
    files = {
        f"{module}.py": f"VERSION = {version!r}\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for rel, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
    return wheel


@dataclass(frozen=True)
class FakeStack:
    """Four upstream repositories (one ComfyUI, three packs), their lock file and a local package index."""

    root: Path
    lock: Path
    sources: dict[str, str]
    commits: dict[str, str]
    wheels: Path
    constraints: Path


PACKS = ("ComfyUI-WanVideoWrapper", "ComfyUI-KJNodes", "ComfyUI-VideoHelperSuite")


def make_stack(root: Path) -> FakeStack:
    """A ComfyUI-shaped stack: ComfyUI's requirements name torch (which the install must drop), two packs'
    requirements lack a trailing newline, and ``wanx-tiny-a`` exists as 1.0 and 2.0 with 1.0 constrained."""
    wheels = root / "wheels"
    for name, version in (("wanx-tiny-a", "1.0"), ("wanx-tiny-a", "2.0"), ("wanx-tiny-b", "1.0")):
        make_wheel(wheels, name, version)
    make_wheel(wheels, "torch", "0.0.1")  # what the image's CUDA torch is to the installer: a named dist
    for name in ("wanx-tiny-c", "wanx-tiny-d"):
        make_wheel(wheels, name, "1.0")
    files = {
        "ComfyUI": {
            "main.py": "print('fake ComfyUI')\n",
            "requirements.txt": "torch\ntorchvision>=0.1\ntorchaudio\nwanx-tiny-a\n\n#non essential:\nwanx-tiny-b\n",
            ".gitignore": "/custom_nodes/*\n",
        },
        "ComfyUI-WanVideoWrapper": {"__init__.py": "", "requirements.txt": "wanx-tiny-c"},
        "ComfyUI-KJNodes": {"__init__.py": "", "requirements.txt": "wanx-tiny-d"},
        "ComfyUI-VideoHelperSuite": {"__init__.py": "", "requirements.txt": "wanx-tiny-b\n"},
    }
    commits, sources = {}, {}
    for name, content in files.items():
        path = root / "upstream" / "example" / name
        commits[name] = make_repo(path, content)
        sources[name] = str(path)
    lock = root / "comfyui.lock.yaml"
    write_lock(lock, commits)
    constraints = root / "constraints.txt"
    constraints.write_text("wanx-tiny-a==1.0\n")
    return FakeStack(root, lock, sources, commits, wheels, constraints)


def write_lock(path: Path, commits: dict[str, str], *, refused: tuple[str, ...] = ("ComfyUI-Manager",)) -> None:
    def entry(name: str) -> dict[str, str]:
        return {"name": name, "repo": f"https://github.com/example/{name}", "commit": commits[name], "version": "1.0"}

    data = {
        "version": 1,
        "comfyui": entry("ComfyUI"),
        "node_packs": [entry(name) for name in PACKS],
        "refused_node_packs": list(refused),
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
