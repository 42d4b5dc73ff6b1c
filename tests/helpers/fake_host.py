"""Stand-ins for what a GPU host has and this machine cannot: docker, podman-compose and nvidia-smi executables.

Each is a small shell script put in a folder that tests use as PATH. They answer the exact commands wanx runs and
append every other command line (with the variables compose would see) to ``calls.log`` in that folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

RUNC_AND_NVIDIA = {"io.containerd.runc.v2": {}, "nvidia": {"path": "nvidia-container-runtime"}, "runc": {}}
H100 = "NVIDIA H100 80GB HBM3, 81559, 550.54.15"


@dataclass(frozen=True)
class FakeHost:
    bin: Path

    @property
    def path(self) -> str:
        return str(self.bin)

    @property
    def log(self) -> Path:
        return self.bin / "calls.log"

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def make_host(
    folder: Path,
    *,
    docker: bool = True,
    daemon_up: bool = True,
    compose_plugin: bool = True,
    runtimes: dict[str, object] | None = None,
    gpus: tuple[str, ...] = (H100,),
    podman_compose: bool = False,
) -> FakeHost:
    """Write the fake executables into ``folder``; ``gpus`` are nvidia-smi CSV lines (empty: no nvidia-smi)."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "calls.log"
    record = (
        f'echo "$* | WANX_MODELS_DIR=$WANX_MODELS_DIR WANX_DATA_DIR=$WANX_DATA_DIR WANX_UID=$WANX_UID '
        f'WANX_PORT=$WANX_PORT WANX_GPUS=$WANX_GPUS" >> {log}\n'
    )
    if docker:
        version = (
            'echo "28.2.2"'
            if daemon_up
            else ('echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2; exit 1')
        )
        compose = (
            "echo 'Docker Compose version v2.29.1'" if compose_plugin else "echo 'not a docker command' >&2; exit 1"
        )
        runtimes_json = json.dumps(RUNC_AND_NVIDIA if runtimes is None else runtimes)
        _script(
            folder / "docker",
            f"""case "$1 $2" in
  "version --format") {version} ;;
  "compose version") {compose} ;;
  "info --format") echo '{runtimes_json}' ;;
  *) {record}     case "$*" in *"${{FAKE_FAIL:-no such call}}"*) echo "fake failure" >&2; exit 3 ;; esac ;;
esac
""",
        )
    if podman_compose:
        _script(folder / "podman-compose", record)
    if gpus:
        lines = " ".join(f"'{line}'" for line in gpus)
        _script(folder / "nvidia-smi", f"printf '%s\\n' {lines}\n")
    return FakeHost(folder)
