"""Install the pinned ComfyUI stack into a prefix: clone, verify, own venv, pinned requirements, model paths.

The same steps run in the image build (scripts/install-comfyui.sh) and in the no-Docker mode (`wanx install`).
Layout under the prefix: ``ComfyUI/`` (with ``custom_nodes/<pack>``), ``venv/``, ``requirements.txt``,
``extra_model_paths.yaml``, ``comfyui.env``, ``workflows/`` and ``install.json``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, cast

from wanx.comfylock import ComfyLock, PinnedRepo, load_comfylock
from wanx.errors import ConfigError, InstallError, PinMismatchError, RefusedNodePackError
from wanx.fsutil import atomic_write

__all__ = [
    "CPU_TORCH",
    "MODEL_FOLDERS",
    "RUNTIME_ENV",
    "InstallResult",
    "InstallSettings",
    "Mode",
    "clone_all",
    "guard_torchvision",
    "install_stack",
    "joined_requirements",
    "resolve_source",
    "source_overrides_from_env",
    "write_extra_model_paths",
]

log = logging.getLogger(__name__)

# Environment every ComfyUI process gets. VHS_STRICT_PATHS keeps VideoHelperSuite's path inputs inside ComfyUI's
# own folders (defence in depth behind the gateway).
RUNTIME_ENV: Mapping[str, str] = {"VHS_STRICT_PATHS": "1"}

# Folders of the models directory that ComfyUI and the node packs look up (folder_paths names).
MODEL_FOLDERS = (
    "diffusion_models",
    "text_encoders",
    "vae",
    "clip_vision",
    "loras",
    "checkpoints",
    "upscale_models",
    "embeddings",
    "controlnet",
)

# CPU mode: torch 2.13.0 resolves to the local CPU wheel; torchvision 0.28.0 is the only release matching it.
CPU_TORCH = ("torch==2.13.0", "torchvision==0.28.0")

_TORCH_LINE = re.compile(r"^\s*(torch|torchvision|torchaudio)\s*([<>=!~;\[#].*)?$", re.IGNORECASE)
_SOURCE_PREFIX = "WANX_GIT_SOURCE_"
_GUARD_MARK = "# wanx: CPU guard, torchvision's ops need CUDA libraries here"


class Mode(StrEnum):
    """Which torch the ComfyUI venv gets: the image's CUDA build (gpu) or the local CPU wheel (cpu)."""

    GPU = "gpu"
    CPU = "cpu"


@dataclass(frozen=True, slots=True)
class InstallSettings:
    """Everything one install needs. Build it at the CLI from flags and ``source_overrides_from_env``.

    ``sources`` maps a repository's env key (``COMFYUI``, ``COMFYUI_KJNODES``) to a URL or local path;
    ``mirror`` replaces ``https://github.com/`` in every other upstream URL (a URL prefix or a local folder
    holding ``<owner>/<name>`` clones). ``torch_spec`` (GPU mode) installs that torch first, from
    ``torch_index_url`` when given; empty means the torch already in the venv (the image's) is kept.
    ``pip_args`` go to every pip call (e.g. ``--no-index --find-links DIR`` on an offline host); ``venv_args``
    to ``python -m venv`` (tests use ``--without-pip --system-site-packages`` to skip the slow ensurepip).
    """

    prefix: Path
    lock_path: Path
    constraints: Path
    models_dir: Path
    mode: Mode = Mode.GPU
    python: str = sys.executable
    sources: Mapping[str, str] = field(default_factory=dict)
    mirror: str | None = None
    workflows_dir: Path | None = None
    torch_spec: tuple[str, ...] = ()
    torch_index_url: str | None = None
    pip_args: tuple[str, ...] = ()
    venv_args: tuple[str, ...] = ()
    only_binary: bool = True

    @property
    def comfyui_dir(self) -> Path:
        return self.prefix / "ComfyUI"

    @property
    def venv(self) -> Path:
        return self.prefix / "venv"


@dataclass(frozen=True, slots=True)
class InstallResult:
    """What was installed, for the CLI to show and for ``install.json``."""

    prefix: Path
    comfyui_dir: Path
    venv_python: Path
    extra_model_paths: Path
    env_file: Path
    commits: Mapping[str, str]
    seconds: float


def source_overrides_from_env(environ: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """Read ``WANX_GIT_SOURCE_<KEY>`` overrides and the ``WANX_GIT_MIRROR`` prefix from ``environ``."""
    sources = {k.removeprefix(_SOURCE_PREFIX): v for k, v in environ.items() if k.startswith(_SOURCE_PREFIX) and v}
    return sources, environ.get("WANX_GIT_MIRROR") or None


def resolve_source(repo: PinnedRepo, sources: Mapping[str, str], mirror: str | None) -> str:
    """Where to clone ``repo`` from: its own override, else the mirror, else the upstream URL."""
    if repo.env_key in sources:
        return sources[repo.env_key]
    if mirror is None:
        return repo.repo
    if "://" in mirror or mirror.startswith("git@"):
        return mirror.rstrip("/") + "/" + repo.repo_path
    base = Path(mirror)
    for candidate in (base / repo.repo_path, base / f"{repo.repo_path}.git", base / repo.name):
        if candidate.exists():
            return str(candidate)
    raise ConfigError(
        f"WANX_GIT_MIRROR={mirror}: no clone of {repo.name} there (looked for {repo.repo_path} and {repo.name})",
        hint=f"Clone {repo.repo} into {base / repo.repo_path}, or set {_SOURCE_PREFIX}{repo.env_key}.",
    )


def install_stack(settings: InstallSettings, *, on_step: Callable[[str], None] | None = None) -> InstallResult:
    """Run every install step in order; raise InstallError (or a subclass) at the first failure."""
    started = time.monotonic()
    step = on_step or (lambda message: log.info(message, extra={"event": "install.step"}))
    lock = load_comfylock(settings.lock_path)
    if not settings.constraints.is_file():
        raise ConfigError(f"{settings.constraints}: constraints file not found", hint="Pass --constraints FILE.")
    settings.prefix.mkdir(parents=True, exist_ok=True)

    commits = clone_all(lock, settings, on_step=step)

    step(f"venv: {settings.venv}")
    _create_venv(settings)
    _install_torch(settings, step)
    requirements = settings.prefix / "requirements.txt"
    _write_text(requirements, joined_requirements(settings.comfyui_dir, lock))
    step(f"pip: requirements under {settings.constraints.name}")
    _pip(settings, "-r", str(requirements))
    _refuse_packs(settings.comfyui_dir / "custom_nodes", lock.refused_node_packs)

    extra = write_extra_model_paths(settings.prefix / "extra_model_paths.yaml", settings.models_dir)
    env_file = _write_env_file(settings.prefix / "comfyui.env")
    _copy_workflows(settings)
    result = InstallResult(
        prefix=settings.prefix,
        comfyui_dir=settings.comfyui_dir,
        venv_python=settings.venv / "bin" / "python",
        extra_model_paths=extra,
        env_file=env_file,
        commits=commits,
        seconds=round(time.monotonic() - started, 1),
    )
    _write_state(settings, result)
    step(f"installed ComfyUI {lock.comfyui.version} in {result.seconds} s")
    return result


def joined_requirements(comfyui_dir: Path, lock: ComfyLock) -> str:
    """ComfyUI's requirements without torch/torchvision/torchaudio, then each pack's, one file per block.

    Each block ends in a newline: two of the packs' files lack a trailing one, and plain concatenation
    would glue their last and first lines together.
    """
    blocks = [f"# {lock.comfyui.name} {lock.comfyui.commit}\n"]
    core = (comfyui_dir / "requirements.txt").read_text(encoding="utf-8").splitlines()
    blocks.append("".join(line + "\n" for line in core if not _TORCH_LINE.match(line)))
    for pack in lock.node_packs:
        path = comfyui_dir / "custom_nodes" / pack.name / "requirements.txt"
        if path.is_file():
            blocks.append(f"# {pack.name} {pack.commit}\n")
            text = path.read_text(encoding="utf-8")
            blocks.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(blocks)


def write_extra_model_paths(target: Path, models_dir: Path) -> Path:
    """Point ComfyUI's model folders at ``models_dir`` (an extra_model_paths.yaml, marked default)."""
    lines = ["# Written by wanx install: ComfyUI looks up its model folders under base_path.", "wanx:"]
    lines.append(f"  base_path: {json.dumps(str(models_dir))}")
    lines.append("  is_default: true")
    lines += [f"  {name}: {name}/" for name in MODEL_FOLDERS]
    _write_text(target, "\n".join(lines) + "\n")
    return target


def guard_torchvision(site_packages: Path) -> bool:
    """CPU mode only: let ``import torchvision`` work with the PyPI CUDA build of torchvision 0.28.0.

    Its compiled ops need CUDA libraries, so they never load on a CPU torch, and the unguarded
    ``register_fake("torchvision::nms"/"qnms")`` decorators then raise at import. The guard skips those two
    registrations when the ops are absent (the pure-Python transforms ComfyUI needs keep working).
    Returns True when the file was changed, False when it was already guarded. Idempotent.
    """
    path = site_packages / "torchvision" / "_meta_registrations.py"
    text = path.read_text(encoding="utf-8")
    if _GUARD_MARK in text:
        return False
    count = 0
    for op in ("nms", "qnms"):
        old = f'@torch.library.register_fake("torchvision::{op}")\n'
        new = (
            f'@(torch.library.register_fake("torchvision::{op}") if torchvision.extension._has_ops() else lambda f: f)'
        )
        count += text.count(old)
        text = text.replace(old, f"{new}  {_GUARD_MARK}\n")
    if count != 2 or "import torchvision.extension" not in text:
        raise InstallError(f"{path}: expected the nms and qnms registrations to guard, found {count}")
    _write_text(path, text)
    return True


# ---------------------------------------------------------------- steps


def clone_all(
    lock: ComfyLock, settings: InstallSettings, *, on_step: Callable[[str], None] | None = None
) -> dict[str, str]:
    """Clone ComfyUI and each pack at its pinned commit, verify HEAD, and refuse banned packs."""
    step = on_step or (lambda message: log.info(message, extra={"event": "install.step"}))
    commits: dict[str, str] = {}
    for repo in lock.repos:
        dest = settings.comfyui_dir if repo is lock.comfyui else settings.comfyui_dir / "custom_nodes" / repo.name
        source = resolve_source(repo, settings.sources, settings.mirror)
        step(f"git: {repo.name} {repo.commit[:12]} from {_scrub(source)}")
        _clone_pinned(repo, source, dest)
        commits[repo.name] = repo.commit
    _refuse_packs(settings.comfyui_dir / "custom_nodes", lock.refused_node_packs)
    return commits


def _clone_pinned(repo: PinnedRepo, source: str, dest: Path) -> None:
    if (dest / ".git").exists() and _head(dest) == repo.commit and not _git(dest, "status", "--porcelain", "-uno"):
        return
    if dest.exists():  # a stale or half-made clone: start over (packs are cloned again after ComfyUI)
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clone = ["git", "clone", "--quiet", "--no-checkout"]
    if "://" in source and not source.startswith("file://"):
        clone.append("--filter=blob:none")  # only the pinned tree's blobs are fetched, at checkout
    _run([*clone, source, str(dest)], what=f"git clone {repo.name} from {_scrub(source)}")
    try:
        _run(["git", "-C", str(dest), "checkout", "--quiet", "--detach", repo.commit], what=f"checkout {repo.name}")
    except InstallError as exc:
        raise PinMismatchError(
            f"{repo.name}: commit {repo.commit} is not in {_scrub(source)} ({exc.message})",
        ) from exc
    head = _head(dest)
    if head != repo.commit:
        raise PinMismatchError(f"{repo.name}: HEAD is {head} after checkout (expected {repo.commit})")


def _refuse_packs(custom_nodes: Path, refused: Sequence[str]) -> None:
    if not custom_nodes.is_dir():
        return
    banned = {name.lower() for name in refused}
    for entry in custom_nodes.iterdir():
        if entry.name.lower().removesuffix(".disabled") in banned:
            raise RefusedNodePackError(f"{entry}: {entry.name} must never be installed")


def _create_venv(settings: InstallSettings) -> None:
    if (settings.venv / "bin" / "python").exists():
        return
    _run([settings.python, "-m", "venv", *settings.venv_args, str(settings.venv)], what="create ComfyUI's venv")


def _install_torch(settings: InstallSettings, step: Callable[[str], None]) -> None:
    if settings.mode is Mode.CPU:
        for spec in CPU_TORCH:
            step(f"pip: {spec} (CPU)")
            _pip(settings, spec)
        if guard_torchvision(_site_packages(settings.venv)):
            step("torchvision: CPU import guard applied")
        return
    if settings.torch_spec:
        step(f"pip: {' '.join(settings.torch_spec)} (GPU)")
        index = ("--index-url", settings.torch_index_url) if settings.torch_index_url else ()
        _pip(settings, *index, *settings.torch_spec, constrained=False)
    # Without a torch here, pip would pull PyPI's default build for the packs (CUDA 13: drivers 580+ only).
    probe = "import importlib.metadata as m; print(m.version('torch'))"
    try:
        version = _run([str(settings.venv / "bin" / "python"), "-c", probe], what="torch version").strip()
    except InstallError as exc:
        raise InstallError(
            f"{settings.venv}: no torch in ComfyUI's venv (GPU mode installs none unless told which)",
            hint="Pass --torch-spec 'torch==X torchvision==Y' with --torch-index-url for a CUDA 12 build "
            "(WANX_TORCH_SPEC, WANX_TORCH_INDEX_URL), or --cpu for the local CPU torch.",
        ) from exc
    step(f"torch {version} (GPU)")


def _pip(settings: InstallSettings, *args: str, constrained: bool = True) -> None:
    argv = [str(settings.venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    if settings.only_binary:
        argv += ["--only-binary", ":all:"]
    if constrained:
        argv += ["-c", str(settings.constraints)]
    _run([*argv, *settings.pip_args, *args], what=f"pip install {' '.join(args)}")


def _write_env_file(target: Path) -> Path:
    header = "# Environment for ComfyUI processes (systemd EnvironmentFile= or docker --env-file).\n"
    _write_text(target, header + "".join(f"{k}={v}\n" for k, v in RUNTIME_ENV.items()))
    return target


def _copy_workflows(settings: InstallSettings) -> None:
    if settings.workflows_dir is None:
        return
    if not settings.workflows_dir.is_dir():
        raise ConfigError(f"{settings.workflows_dir}: workflows folder not found", hint="Pass --workflows DIR.")
    target = settings.prefix / "workflows"
    staging = settings.prefix / ".workflows.new"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(settings.workflows_dir, staging)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)


def _write_state(settings: InstallSettings, result: InstallResult) -> None:
    state = {
        "version": 1,
        "mode": settings.mode.value,
        "commits": dict(result.commits),
        "comfyui_dir": str(result.comfyui_dir),
        "venv_python": str(result.venv_python),
        "extra_model_paths": str(result.extra_model_paths),
        "models_dir": str(settings.models_dir),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write_text(settings.prefix / "install.json", json.dumps(state, indent=2) + "\n")


# ---------------------------------------------------------------- helpers


def _run(argv: Sequence[str], *, what: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise InstallError(f"{what}: exit {proc.returncode}: {tail}")
    return proc.stdout


def _write_text(target: Path, text: str) -> None:
    with atomic_write(target) as fh:
        cast("IO[str]", fh).write(text)


def _git(repo: Path, *args: str) -> str:
    return _run(["git", "-C", str(repo), *args], what=f"git {args[0]} in {repo}").strip()


def _head(repo: Path) -> str:
    return _git(repo, "rev-parse", "HEAD")


def _site_packages(venv: Path) -> Path:
    out = _run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        what="find site-packages",
    )
    return Path(out.strip())


def _scrub(source: str) -> str:
    """A source URL without credentials, for messages."""
    return re.sub(r"//[^/@]+@", "//", source)
