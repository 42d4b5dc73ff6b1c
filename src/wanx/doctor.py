"""Preflight checks for a GPU host: container engine, NVIDIA runtime, GPU, host memory and free disk.

Each check returns a ``Check`` whose ``hint`` says what to do; nothing here prints or exits.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from wanx.fsutil import free_bytes

__all__ = [
    "WORKFLOW_NEEDS",
    "Check",
    "DoctorOptions",
    "Engine",
    "Gpu",
    "ModelFile",
    "Needs",
    "Report",
    "Status",
    "find_engine",
    "query_gpus",
    "run_checks",
]

GIB = 1024**3
MIN_DRIVER = 525  # CUDA 12 through minor-version compatibility; the image's torch is a cu12x build


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Needs:
    """What one workflow needs from the host (planning figures, see docs/deploy.md)."""

    gpu_memory_gib: int
    host_memory_gib: int


# wanx-21: 14B I2V fp8 with 10 blocks swapped: about 60 GB host RAM (issue #5); Kijai reports about 16 GB of
# GPU memory with 20 of 40 blocks swapped, so 24 GB (A10 class) for 10. vace: 1.3B, 8.2 GB peak on a 4090.
WORKFLOW_NEEDS: Mapping[str, Needs] = {
    "wanx-21": Needs(gpu_memory_gib=24, host_memory_gib=60),
    "vace": Needs(gpu_memory_gib=12, host_memory_gib=16),
}


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One weight file a selected workflow loads: its path under the models folder and expected size."""

    path: str
    size: int | None


@dataclass(frozen=True, slots=True)
class Engine:
    """A working container engine and the compose command that goes with it."""

    kind: str  # "docker" or "podman"
    cli: str
    version: str
    compose: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Gpu:
    name: str
    memory_mib: int
    driver: str


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    checks: tuple[Check, ...]
    settings: Mapping[str, str] = field(default_factory=dict)
    engine: Engine | None = None
    gpus: tuple[Gpu, ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.status is not Status.FAIL for c in self.checks)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checks": [
                {"name": c.name, "status": str(c.status), "detail": c.detail, "hint": c.hint} for c in self.checks
            ],
            "settings": dict(self.settings),
        }


@dataclass(frozen=True, slots=True)
class DoctorOptions:
    """What to check. ``path`` is the PATH used to find docker, podman and nvidia-smi."""

    workflows: tuple[str, ...]
    models_dir: Path
    model_files: tuple[ModelFile, ...] = ()
    cpu: bool = False  # CPU mode: no GPU, no NVIDIA runtime needed
    container: bool = True  # False for --no-docker: no engine needed
    path: str | None = None
    meminfo: Path = Path("/proc/meminfo")
    cdi_dirs: tuple[Path, ...] = (Path("/etc/cdi"), Path("/var/run/cdi"))
    settings: Mapping[str, str] = field(default_factory=dict)


def _run(argv: Sequence[str], *, timeout: float = 20.0) -> subprocess.CompletedProcess[str] | None:
    """Run a probe; None when it cannot start or hangs (a stuck daemon must not stall the doctor)."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _first_line(result: subprocess.CompletedProcess[str] | None) -> str:
    if result is None:
        return "did not answer"
    text = (result.stderr or result.stdout).strip()
    return text.splitlines()[-1] if text else f"exit status {result.returncode}"


def _compose_for(kind: str, cli: str, path: str | None) -> tuple[str, ...]:
    if kind == "docker":
        probe = _run([cli, "compose", "version"])
        if probe is not None and probe.returncode == 0:
            return (cli, "compose")
        legacy = shutil.which("docker-compose", path=path)
        return (legacy,) if legacy else ()
    podman_compose = shutil.which("podman-compose", path=path)
    return (podman_compose,) if podman_compose else ()


def find_engine(path: str | None) -> tuple[Engine | None, str]:
    """The first container engine whose daemon answers (docker, then podman); else None and why."""
    problems: list[str] = []
    for kind in ("docker", "podman"):
        cli = shutil.which(kind, path=path)
        if cli is None:
            continue
        fmt = "{{.Server.Version}}" if kind == "docker" else "{{.Version}}"
        result = _run([cli, "version", "--format", fmt])
        if result is None or result.returncode != 0 or not result.stdout.strip():
            problems.append(f"{kind}: {_first_line(result)}")
            continue
        return Engine(kind, cli, result.stdout.strip(), _compose_for(kind, cli, path)), ""
    return None, "; ".join(problems) or "neither docker nor podman is on PATH"


def query_gpus(path: str | None) -> tuple[list[Gpu], str]:
    """The GPUs nvidia-smi reports; an empty list and the reason when there are none."""
    smi = shutil.which("nvidia-smi", path=path)
    if smi is None:
        return [], "nvidia-smi not found"
    result = _run([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"])
    if result is None or result.returncode != 0:
        return [], f"nvidia-smi failed: {_first_line(result)}"
    gpus: list[Gpu] = []
    for line in result.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit():
            gpus.append(Gpu(parts[0], int(parts[1]), parts[2]))
    return gpus, "" if gpus else "nvidia-smi listed no GPU"


def _needs(workflows: Iterable[str]) -> Needs:
    selected = [WORKFLOW_NEEDS[w] for w in workflows if w in WORKFLOW_NEEDS]
    return Needs(
        gpu_memory_gib=max((n.gpu_memory_gib for n in selected), default=0),
        host_memory_gib=max((n.host_memory_gib for n in selected), default=0),
    )


def _check_engine(engine: Engine | None, why: str) -> Check:
    if engine is None:
        return Check(
            "container-engine",
            Status.FAIL,
            why,
            "Install Docker Engine with the compose plugin (https://docs.docker.com/engine/install/) and start it "
            "(sudo systemctl enable --now docker), or run without containers: wanx up --no-docker.",
        )
    if not engine.compose:
        return Check(
            "container-engine",
            Status.FAIL,
            f"{engine.kind} {engine.version}, but no compose command",
            "Install the Docker compose plugin (apt-get install docker-compose-plugin) or podman-compose "
            "(pip install podman-compose).",
        )
    return Check("container-engine", Status.OK, f"{engine.kind} {engine.version} ({' '.join(engine.compose)})")


def _check_nvidia_runtime(engine: Engine, cdi_dirs: Sequence[Path]) -> Check:
    if engine.kind == "docker":
        result = _run([engine.cli, "info", "--format", "{{json .Runtimes}}"])
        runtimes: object = {}
        if result is not None and result.returncode == 0:
            try:
                runtimes = json.loads(result.stdout or "{}")
            except json.JSONDecodeError:
                runtimes = {}
        if isinstance(runtimes, dict) and "nvidia" in runtimes:
            return Check("nvidia-runtime", Status.OK, "docker has the nvidia runtime")
        found = ", ".join(sorted(runtimes)) if isinstance(runtimes, dict) and runtimes else "none reported"
        return Check(
            "nvidia-runtime",
            Status.FAIL,
            f"docker runtimes: {found}; no nvidia",
            "Install the NVIDIA Container Toolkit, then run: sudo nvidia-ctk runtime configure --runtime=docker "
            "&& sudo systemctl restart docker.",
        )
    specs = [p for d in cdi_dirs if d.is_dir() for p in sorted(d.iterdir()) if p.suffix in (".yaml", ".json")]
    if any("nvidia.com" in p.read_text(encoding="utf-8", errors="replace") for p in specs):
        return Check("nvidia-runtime", Status.OK, "CDI spec for nvidia.com/gpu found")
    return Check(
        "nvidia-runtime",
        Status.FAIL,
        "no CDI spec for nvidia.com/gpu in " + ", ".join(str(d) for d in cdi_dirs),
        "Install the NVIDIA Container Toolkit, then run: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml.",
    )


def _check_gpu(gpus: list[Gpu], why: str, needs: Needs) -> Check:
    if not gpus:
        return Check(
            "gpu",
            Status.FAIL,
            f"no NVIDIA GPU ({why})",
            "Install the NVIDIA driver (535 or newer), or try the web page and the API on CPU with "
            "make up CPU=1 (wanx up --cpu); generation on CPU is impractically slow.",
        )
    best = max(gpus, key=lambda g: g.memory_mib)
    detail = f"{len(gpus)} x {best.name}, {best.memory_mib // 1024} GiB, driver {best.driver}"
    major = best.driver.split(".", 1)[0]
    if not major.isdigit() or int(major) < MIN_DRIVER:
        return Check(
            "gpu",
            Status.FAIL,
            detail,
            f"The image's CUDA 12 torch needs NVIDIA driver {MIN_DRIVER} or newer (got {best.driver}); "
            "upgrade the driver.",
        )
    if best.memory_mib < needs.gpu_memory_gib * 1024:
        return Check(
            "gpu",
            Status.WARN,
            detail,
            f"The selected workflows want about {needs.gpu_memory_gib} GiB of GPU memory; expect out-of-memory "
            "errors, or raise blocks_to_swap in the workflow.",
        )
    return Check("gpu", Status.OK, detail)


def _meminfo_total(meminfo: Path) -> int | None:
    try:
        for line in meminfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _check_memory(meminfo: Path, needs: Needs) -> Check:
    total = _meminfo_total(meminfo)
    if total is None:
        return Check("host-memory", Status.WARN, f"cannot read {meminfo}", "Check the host's memory by hand (free -g).")
    detail = f"{total / GIB:.0f} GiB"
    # "about 60 GB": allow the few GiB a 64 GB machine reports below its nominal size.
    if total < needs.host_memory_gib * GIB * 0.9:
        return Check(
            "host-memory",
            Status.WARN,
            detail,
            f"The selected workflows want about {needs.host_memory_gib} GB of host memory (block swap keeps the "
            "14B model's swapped blocks in RAM); use a larger machine or WORKFLOWS=vace.",
        )
    return Check("host-memory", Status.OK, detail)


def _check_disk(models_dir: Path, files: Sequence[ModelFile]) -> Check:
    missing = [f for f in files if not _present(models_dir, f)]
    unknown = [f.path for f in missing if f.size is None]
    need = sum(f.size or 0 for f in missing)
    free = free_bytes(models_dir)
    detail = f"{need / GIB:.1f} GiB to fetch for {len(missing)} of {len(files)} files, {free / GIB:.1f} GiB free"
    if need > free:
        return Check(
            "disk",
            Status.FAIL,
            detail + f" at {models_dir}",
            "Free some space, or point WANX_MODELS_DIR in .env at a larger disk.",
        )
    if unknown:
        return Check(
            "disk",
            Status.WARN,
            detail + f"; size unknown for {', '.join(unknown)}",
            "Leave a few GiB of room beyond the figure above.",
        )
    return Check("disk", Status.OK, detail)


def _present(models_dir: Path, model: ModelFile) -> bool:
    target = models_dir / model.path
    try:
        return target.is_file() and (model.size is None or target.stat().st_size == model.size)
    except OSError:
        return False


def _skipped(name: str, why: str) -> Check:
    return Check(name, Status.SKIP, why)


def run_checks(options: DoctorOptions) -> Report:
    """Run every check that applies to the chosen mode and return them in a fixed order."""
    needs = _needs(options.workflows)
    checks: list[Check] = []
    engine: Engine | None = None
    gpus: list[Gpu] = []
    if options.container:
        engine, why = find_engine(options.path)
        checks.append(_check_engine(engine, why))
        if options.cpu:
            checks.append(_skipped("nvidia-runtime", "CPU mode"))
        elif engine is None:
            checks.append(_skipped("nvidia-runtime", "no container engine"))
        else:
            checks.append(_check_nvidia_runtime(engine, options.cdi_dirs))
    else:
        checks.append(_skipped("container-engine", "--no-docker"))
    if options.cpu:
        checks.append(_skipped("gpu", "CPU mode"))
    else:
        gpus, why = query_gpus(options.path)
        checks.append(_check_gpu(gpus, why, needs))
    checks.append(_check_memory(options.meminfo, needs))
    checks.append(_check_disk(options.models_dir, options.model_files))
    return Report(tuple(checks), dict(options.settings), engine, tuple(gpus))
