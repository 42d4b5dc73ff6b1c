"""`wanx doctor`, `wanx up` and `wanx stack` as subprocesses, against stand-in docker/nvidia-smi executables and a
gateway stand-in on 127.0.0.1 that answers /readyz."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.helpers.fake_host import H100, FakeHost, make_host
from tests.helpers.servers import REPO, run_app
from wanx.cli.up import fetch_argv
from wanx.stack import StackConfig, read_env_file

pytestmark = pytest.mark.integration


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A checkout with what `wanx up` reads: deploy/, .env.example and the lock file."""
    root = tmp_path / "checkout"
    (root / "deploy").mkdir(parents=True)
    for name in ("deploy/compose.yaml", "deploy/compose.cpu.yaml", ".env.example", "models.lock.yaml"):
        shutil.copy(REPO / name, root / name)
    return root


def _gateway(status: int) -> web.Application:
    async def readyz(request: web.Request) -> web.Response:
        return web.json_response({"ready": status == 200}, status=status)

    app = web.Application()
    app.router.add_get("/readyz", readyz)
    return app


@pytest.fixture
def ready_port() -> Iterator[int]:
    with run_app(lambda: _gateway(200)) as url:
        yield int(url.rsplit(":", 1)[1])


def _wanx(host: FakeHost, *args: str, port: int = 9, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": host.path, "WANX_BIND": "127.0.0.1", "WANX_PORT": str(port), "COLUMNS": "200", **env}
    return subprocess.run(
        [sys.executable, "-m", "wanx", *args], capture_output=True, text=True, env=environ, timeout=60, check=False
    )


def _container_uid() -> int:
    return 1000 if os.getuid() == 0 else os.getuid()


def test_up_creates_env_builds_starts_and_waits(tmp_path: Path, root: Path, ready_port: int) -> None:
    host = make_host(tmp_path / "bin")
    result = _wanx(host, "up", "--root", str(root), "--skip-fetch", "--timeout", "10", port=ready_port)
    assert result.returncode == 0, result.stderr
    env_file = root / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    token = read_env_file(env_file)["WANX_TOKEN"]
    assert len(token) >= 40 and token not in result.stderr + result.stdout
    models, data = root / "var/models", root / "var/data"
    tail = (
        f"WANX_MODELS_DIR={models} WANX_DATA_DIR={data} WANX_UID={_container_uid()} WANX_PORT={ready_port} WANX_GPUS=0"
    )
    assert host.calls() == [
        f"build -t localhost/wanx:latest -f {root}/Dockerfile {root} | {tail}",
        f"compose -f {root}/deploy/compose.yaml --env-file {env_file} up -d --remove-orphans | {tail}",
    ]
    assert all((data / d).is_dir() for d in ("input", "output", "user"))
    assert f"open http://127.0.0.1:{ready_port}/" in result.stderr
    assert f"WANX_TOKEN in {env_file}" in result.stderr
    assert "created" in result.stderr

    again = _wanx(host, "up", "--root", str(root), "--skip-fetch", "--timeout", "10", port=ready_port)
    assert again.returncode == 0, again.stderr
    assert read_env_file(env_file)["WANX_TOKEN"] == token  # an existing .env is never replaced
    assert "created" not in again.stderr


@pytest.mark.parametrize(
    ("gpus_setting", "expected"),
    [
        pytest.param("", "WANX_GPUS=0,1", id="every-gpu-the-host-has"),
        pytest.param("1", "WANX_GPUS=1", id="the-listed-ones"),
    ],
)
def test_up_starts_one_comfyui_per_gpu(
    tmp_path: Path, root: Path, ready_port: int, gpus_setting: str, expected: str
) -> None:
    host = make_host(tmp_path / "bin", gpus=(H100, H100))
    result = _wanx(host, "up", "--root", str(root), "--skip-fetch", port=ready_port, WANX_GPUS=gpus_setting)
    assert result.returncode == 0, result.stderr
    compose_up = [c for c in host.calls() if c.startswith("compose")]
    assert compose_up and compose_up[0].endswith(expected)


def test_up_pulls_wanx_image_instead_of_building(tmp_path: Path, root: Path, ready_port: int) -> None:
    host = make_host(tmp_path / "bin")
    result = _wanx(host, "up", "--root", str(root), "--skip-fetch", port=ready_port, WANX_IMAGE="reg.example/wanx:1")
    assert result.returncode == 0, result.stderr
    assert host.calls()[0].startswith("pull reg.example/wanx:1 | ")
    assert not any(c.startswith("build") for c in host.calls())


def test_up_without_a_gpu_stops_and_offers_cpu_mode(tmp_path: Path, root: Path) -> None:
    host = make_host(tmp_path / "bin", gpus=())
    result = _wanx(host, "up", "--root", str(root), "--skip-fetch")
    assert result.returncode == 1
    assert "preflight failed (gpu)" in result.stderr
    assert "make up CPU=1" in result.stderr and "impractically slow" in result.stderr
    assert host.calls() == []


def test_up_in_cpu_mode_adds_the_cpu_override(tmp_path: Path, root: Path, ready_port: int) -> None:
    host = make_host(tmp_path / "bin", gpus=(), runtimes={"runc": {}})
    result = _wanx(host, "up", "--root", str(root), "--skip-fetch", "--cpu", port=ready_port)
    assert result.returncode == 0, result.stderr
    assert "CPU mode" in result.stderr
    up = host.calls()[-1]
    assert f"-f {root}/deploy/compose.yaml -f {root}/deploy/compose.cpu.yaml" in up


def test_up_reports_a_stack_that_never_gets_ready(tmp_path: Path, root: Path) -> None:
    host = make_host(tmp_path / "bin")
    with run_app(lambda: _gateway(503)) as url:
        port = url.rsplit(":", 1)[1]
        result = _wanx(host, "up", "--root", str(root), "--skip-fetch", "--timeout", "1", port=int(port))
    assert result.returncode == 1
    assert f"http://127.0.0.1:{port}/readyz: not ready after 1 s (last answer: HTTP 503)" in result.stderr
    assert "make logs" in result.stderr


def test_up_reports_a_failing_compose(tmp_path: Path, root: Path) -> None:
    host = make_host(tmp_path / "bin")
    result = _wanx(host, "up", "--root", str(root), "--skip-fetch", FAKE_FAIL="up -d")
    assert result.returncode == 1
    assert "starting the stack failed" in result.stderr and "wanx doctor" in result.stderr


def test_doctor_json_masks_the_token(tmp_path: Path, root: Path) -> None:
    host = make_host(tmp_path / "bin")
    (root / ".env").write_text("WANX_TOKEN=very-secret-value\nWANX_WORKFLOWS=vace\n")
    result = _wanx(host, "doctor", "--root", str(root), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["settings"]["WANX_TOKEN"] == "set (17 characters, hidden)"
    assert report["settings"]["WANX_WORKFLOWS"] == "vace"
    assert "very-secret-value" not in result.stdout + result.stderr
    assert [c["name"] for c in report["checks"]] == ["container-engine", "nvidia-runtime", "gpu", "host-memory", "disk"]


def test_doctor_fails_with_what_to_do(tmp_path: Path, root: Path) -> None:
    host = make_host(tmp_path / "bin", runtimes={"runc": {}})
    result = _wanx(host, "doctor", "--root", str(root))
    assert result.returncode == 1
    assert "nvidia-runtime failed" in result.stderr
    assert "nvidia-ctk runtime configure" in result.stderr


def test_doctor_names_an_unknown_workflow(tmp_path: Path, root: Path) -> None:
    result = _wanx(make_host(tmp_path / "bin"), "doctor", "--root", str(root), "--workflows", "t2v")
    assert result.returncode == 1
    assert "t2v" in result.stderr and "wanx-21" in result.stderr


def test_stack_down_and_status(tmp_path: Path, root: Path, ready_port: int) -> None:
    host = make_host(tmp_path / "bin")
    (root / ".env").write_text("WANX_TOKEN=x\n")
    assert _wanx(host, "stack", "down", "--root", str(root)).returncode == 0
    status = _wanx(host, "stack", "status", "--root", str(root), port=ready_port)
    assert status.returncode == 0, status.stderr
    assert f"http://127.0.0.1:{ready_port}/readyz: ready" in status.stderr
    assert [c.split(" | ")[0] for c in host.calls()] == [
        f"compose -f {root}/deploy/compose.yaml --env-file {root}/.env down",
        f"compose -f {root}/deploy/compose.yaml --env-file {root}/.env ps",
    ]


def test_fetch_asks_only_for_the_selected_workflows(root: Path) -> None:
    vace = StackConfig.from_env({"WANX_WORKFLOWS": "vace"}, root=root)
    argv, unverified = fetch_argv(vace)
    assert argv[1:] == [
        "-m", "wanx", "models", "fetch", "--lockfile", str(root / "models.lock.yaml"),
        "--models-dir", str(root / "var/models"), "--workflow", "vace",
    ]  # fmt: skip
    assert unverified == []
    both_argv, both_unverified = fetch_argv(StackConfig.from_env({}, root=root))
    assert both_argv[-5:] == ["--workflow", "wanx-21", "--workflow", "vace", "--allow-unverified"]
    assert both_unverified and all(p.startswith("clip_vision/") for p in both_unverified)


def test_no_docker_mode_needs_no_engine_and_hands_over_to_the_installer(tmp_path: Path, root: Path) -> None:
    host = make_host(tmp_path / "bin", docker=False, gpus=())
    mirror = tmp_path / "empty-mirror"
    mirror.mkdir()
    shutil.copy(REPO / "comfyui.lock.yaml", root / "comfyui.lock.yaml")
    shutil.copytree(REPO / "constraints", root / "constraints")
    result = _wanx(
        host, "up", "--root", str(root), "--no-docker", "--cpu", "--skip-fetch",
        WANX_GIT_MIRROR=str(mirror), WANX_PREFIX=str(tmp_path / "prefix"),
    )  # fmt: skip
    assert result.returncode == 1
    assert "container-engine" in result.stderr and "--no-docker" in result.stderr  # skipped, not failed
    assert f"WANX_GIT_MIRROR={mirror}: no clone of ComfyUI there" in result.stderr
    assert host.calls() == []


def test_up_fills_an_empty_token_in_an_existing_env(tmp_path: Path, root: Path, ready_port: int) -> None:
    host = make_host(tmp_path / "bin")
    (root / ".env").write_text("WANX_WORKFLOWS=vace\nWANX_TOKEN=\n")
    result = _wanx(host, "up", "--root", str(root), "--skip-fetch", port=ready_port)
    assert result.returncode == 0, result.stderr
    values = read_env_file(root / ".env")
    assert values["WANX_WORKFLOWS"] == "vace" and len(values["WANX_TOKEN"]) >= 40
    assert "WANX_TOKEN was empty" in result.stderr
