"""`wanx doctor`'s checks against stand-in docker, podman-compose and nvidia-smi executables (real subprocesses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.fake_host import H100, FakeHost, make_host
from wanx.doctor import Check, DoctorOptions, ModelFile, Report, Status, run_checks

GIB = 1024**3


def _meminfo(tmp_path: Path, gib: int) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       {gib * 1024 * 1024} kB\nMemFree:         1024 kB\n")
    return path


def _run(tmp_path: Path, host: FakeHost, *, ram_gib: int = 128, **options: object) -> Report:
    defaults: dict[str, object] = {
        "workflows": ("wanx-21", "vace"),
        "models_dir": tmp_path / "models",
        "path": host.path,
        "meminfo": _meminfo(tmp_path, ram_gib),
        "cdi_dirs": (tmp_path / "cdi",),
    }
    return run_checks(DoctorOptions(**{**defaults, **options}))  # type: ignore[arg-type]


def _check(report: Report, name: str) -> Check:
    return next(c for c in report.checks if c.name == name)


def test_a_good_gpu_host_passes(tmp_path: Path) -> None:
    report = _run(tmp_path, make_host(tmp_path / "bin"))
    assert report.ok, report.checks
    assert [c.name for c in report.checks] == ["container-engine", "nvidia-runtime", "gpu", "host-memory", "disk"]
    assert _check(report, "container-engine").detail.startswith("docker 28.2.2")
    assert _check(report, "gpu").detail == "1 x NVIDIA H100 80GB HBM3, 79 GiB, driver 550.54.15"
    assert report.engine is not None and report.engine.compose[1:] == ("compose",)


def test_no_engine_says_how_to_install_one(tmp_path: Path) -> None:
    report = _run(tmp_path, make_host(tmp_path / "bin", docker=False))
    engine = _check(report, "container-engine")
    assert engine.status is Status.FAIL
    assert "docs.docker.com/engine/install" in engine.hint and "--no-docker" in engine.hint
    assert _check(report, "nvidia-runtime").status is Status.SKIP
    assert not report.ok


def test_a_stopped_daemon_is_reported_with_its_message(tmp_path: Path) -> None:
    report = _run(tmp_path, make_host(tmp_path / "bin", daemon_up=False))
    engine = _check(report, "container-engine")
    assert engine.status is Status.FAIL
    assert "Cannot connect to the Docker daemon" in engine.detail
    assert "systemctl enable --now docker" in engine.hint


def test_docker_without_compose(tmp_path: Path) -> None:
    engine = _check(_run(tmp_path, make_host(tmp_path / "bin", compose_plugin=False)), "container-engine")
    assert engine.status is Status.FAIL
    assert "docker-compose-plugin" in engine.hint


def test_docker_without_the_nvidia_runtime(tmp_path: Path) -> None:
    runtime = _check(_run(tmp_path, make_host(tmp_path / "bin", runtimes={"runc": {}})), "nvidia-runtime")
    assert runtime.status is Status.FAIL
    assert runtime.detail == "docker runtimes: runc; no nvidia"
    assert "nvidia-ctk runtime configure --runtime=docker" in runtime.hint


def test_podman_needs_a_cdi_spec(tmp_path: Path) -> None:
    host = make_host(tmp_path / "bin", docker=False, podman_compose=True)
    podman = host.bin / "podman"
    podman.write_text('#!/bin/sh\n[ "$1" = version ] && echo 4.3.1\n')
    podman.chmod(0o755)
    missing = _run(tmp_path, host)
    assert _check(missing, "container-engine").detail.startswith("podman 4.3.1")
    assert "nvidia-ctk cdi generate" in _check(missing, "nvidia-runtime").hint
    (tmp_path / "cdi").mkdir()
    (tmp_path / "cdi" / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n")
    assert _check(_run(tmp_path, host), "nvidia-runtime").status is Status.OK


def test_no_gpu_offers_the_cpu_mode(tmp_path: Path) -> None:
    gpu = _check(_run(tmp_path, make_host(tmp_path / "bin", gpus=())), "gpu")
    assert gpu.status is Status.FAIL
    assert gpu.detail == "no NVIDIA GPU (nvidia-smi not found)"
    assert "make up CPU=1" in gpu.hint and "impractically slow" in gpu.hint


def test_cpu_mode_skips_the_gpu_checks(tmp_path: Path) -> None:
    report = _run(tmp_path, make_host(tmp_path / "bin", gpus=(), runtimes={"runc": {}}), cpu=True)
    assert report.ok
    assert _check(report, "gpu").status is Status.SKIP
    assert _check(report, "nvidia-runtime").status is Status.SKIP


@pytest.mark.parametrize(
    ("line", "status", "words"),
    [
        pytest.param("Tesla T4, 15360, 470.82.01", Status.FAIL, "driver 525 or newer", id="driver-too-old"),
        pytest.param("NVIDIA A10, 23028, 535.161.08", Status.WARN, "about 24 GiB", id="a10-is-just-short"),
        pytest.param("NVIDIA L20, 46068, 550.90.07", Status.OK, "", id="l20"),
    ],
)
def test_gpu_driver_and_memory(tmp_path: Path, line: str, status: Status, words: str) -> None:
    gpu = _check(_run(tmp_path, make_host(tmp_path / "bin", gpus=(line,))), "gpu")
    assert gpu.status is status
    assert words in gpu.hint


def test_vace_alone_needs_less(tmp_path: Path) -> None:
    host = make_host(tmp_path / "bin", gpus=("NVIDIA A10, 23028, 535.161.08",))
    report = _run(tmp_path, host, ram_gib=32, workflows=("vace",))
    assert _check(report, "gpu").status is Status.OK
    assert _check(report, "host-memory").status is Status.OK
    assert _check(_run(tmp_path, host, ram_gib=32), "host-memory").status is Status.WARN


def test_host_memory_for_the_14b_model(tmp_path: Path) -> None:
    host = make_host(tmp_path / "bin")
    low = _check(_run(tmp_path, host, ram_gib=32), "host-memory")
    assert low.status is Status.WARN
    assert "about 60 GB" in low.hint and "WORKFLOWS=vace" in low.hint
    assert _check(_run(tmp_path, host, ram_gib=62), "host-memory").status is Status.OK  # a "64 GB" machine


def test_disk_counts_only_missing_files(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "vae").mkdir(parents=True)
    (models / "vae" / "done.safetensors").write_bytes(b"x" * 10)
    files = (ModelFile("vae/done.safetensors", 10), ModelFile("vae/missing.safetensors", 3 * GIB))
    disk = _check(_run(tmp_path, make_host(tmp_path / "bin"), model_files=files), "disk")
    assert disk.status is Status.OK
    assert disk.detail.startswith("3.0 GiB to fetch for 1 of 2 files")


def test_disk_too_small_fails_and_unknown_sizes_warn(tmp_path: Path) -> None:
    host = make_host(tmp_path / "bin")
    huge = (ModelFile("diffusion_models/huge.safetensors", 1024**6),)
    disk = _check(_run(tmp_path, host, model_files=huge), "disk")
    assert disk.status is Status.FAIL
    assert "WANX_MODELS_DIR" in disk.hint and str(tmp_path / "models") in disk.detail
    unknown = _check(_run(tmp_path, host, model_files=(ModelFile("clip_vision/x.safetensors", None),)), "disk")
    assert unknown.status is Status.WARN
    assert "size unknown for clip_vision/x.safetensors" in unknown.detail


def test_no_docker_mode_needs_no_engine(tmp_path: Path) -> None:
    report = _run(tmp_path, make_host(tmp_path / "bin", docker=False), container=False)
    assert report.ok
    assert _check(report, "container-engine").status is Status.SKIP


def test_report_json_shape(tmp_path: Path) -> None:
    report = _run(tmp_path, make_host(tmp_path / "bin", gpus=(H100,)), settings={"WANX_TOKEN": "set (hidden)"})
    data = report.to_json()
    assert data["ok"] is True
    assert data["settings"] == {"WANX_TOKEN": "set (hidden)"}
    assert {"name": "gpu", "status": "ok"}.items() <= data["checks"][2].items()  # type: ignore[index]
