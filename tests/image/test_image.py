"""The Dockerfile's CI variant, built with podman and run: the gateway answers /healthz, code is read-only.

Slow (minutes): `make image-test` runs it (RUN_IMAGE_TEST=1). It needs rootful podman, debootstrap and runc
(scripts/system-deps.sh lists them in docs/deploy.md). With IMAGE_TEST_SOURCES (bare clones of the pinned repositories)
the image carries ComfyUI too and the test waits for /readyz through the gateway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.servers import REPO, free_port

HERE = Path(__file__).resolve().parent
TAG = "localhost/wanx-ci:latest"
TOKEN = "image-test-token-0123456789abcdef"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("RUN_IMAGE_TEST") != "1", reason="builds an image for minutes: make image-test"),
    pytest.mark.skipif(
        shutil.which("podman") is None or shutil.which("debootstrap") is None,
        reason="podman and debootstrap are missing: apt-get install podman buildah debootstrap runc (docs/deploy.md)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs rootful podman and debootstrap: run as root"),
]


def _podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTAINERS_CONF": str(HERE / "containers.conf")}
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=timeout, check=check)


def _status(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


def _wait(url: str, *, want: int, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if _status(url) == want:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer {want} within {timeout} s")


@pytest.fixture(scope="module")
def image() -> str:
    start = time.monotonic()
    subprocess.run([str(HERE / "build.sh"), TAG], cwd=REPO, check=True, timeout=3600)
    print(f"image-test: build.sh took {time.monotonic() - start:.0f} s")
    return TAG


@pytest.fixture
def container(image: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The image run as compose runs it (read-only root, no capabilities), gateway port on 127.0.0.1."""
    data, models = tmp_path / "data", tmp_path / "models"
    for folder in (data, models):
        folder.mkdir()
        os.chown(folder, 1000, 1000)
    port = free_port()
    name = f"wanx-image-test-{os.getpid()}"
    full = bool(os.environ.get("IMAGE_TEST_SOURCES"))
    role = "all" if full else "gateway"
    _podman(
        "run", "-d", "--name", name, "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "-p", f"127.0.0.1:{port}:8080",
        "-e", f"WANX_TOKEN={TOKEN}", "-e", "WANX_CPU=1",
        "-v", f"{data}:/data", "-v", f"{models}:/models:ro", image, role,
    )  # fmt: skip
    try:
        yield name, f"http://127.0.0.1:{port}"
    finally:
        result = _podman("logs", name, check=False)
        logs = result.stdout + result.stderr
        print(f"--- container logs ({role}) ---\n{logs[-4000:]}")
        _podman("rm", "-f", name, check=False)


def test_gateway_serves_healthz_and_guards_the_api(container: tuple[str, str]) -> None:
    name, url = container
    started = _wait(f"{url}/healthz", want=200, timeout=60)
    print(f"image-test: /healthz answered {started:.1f} s after podman run")
    assert _status(f"{url}/prompt") == 401
    if os.environ.get("IMAGE_TEST_SOURCES"):
        ready = _wait(f"{url}/readyz", want=200, timeout=300)
        print(f"image-test: /readyz (ComfyUI on CPU behind the gateway) after {ready:.1f} s")
        assert _status(f"{url}/api/system_stats", TOKEN) == 200
    else:
        assert _status(f"{url}/readyz") == 503  # the gateway-only image has no ComfyUI behind it
    assert _podman("healthcheck", "run", name, check=False).returncode == 0


def test_code_is_read_only_for_the_runtime_user(container: tuple[str, str]) -> None:
    name, url = container
    _wait(f"{url}/healthz", want=200, timeout=60)
    script = (
        'set -e; [ "$(id -u)" = 1000 ]; for d in /opt/wanx /opt/wanx/venv/bin /opt/wanx/scripts; do '
        '[ ! -w "$d" ] || { echo "writable: $d"; exit 1; }; done; touch /data/ok; ! touch /opt/wanx/x 2>/dev/null'
    )
    result = _podman("exec", name, "bash", "-c", script, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("podman-compose") is None, reason="podman-compose missing: pip install podman-compose")
def test_compose_stack_runs_with_podman_compose(image: str, tmp_path: Path) -> None:
    """deploy/compose.yaml + compose.ci.yaml (no GPU, the CI image): models completes, then the gateway serves."""
    for folder in (tmp_path / "models", tmp_path / "data"):
        folder.mkdir()
        os.chown(folder, 1000, 1000)
    port = free_port()
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(HERE / "containers.conf"),
        "WANX_IMAGE": image,
        "WANX_TOKEN": TOKEN,
        "WANX_BIND": "127.0.0.1",
        "WANX_PORT": str(port),
        "WANX_MODELS_DIR": str(tmp_path / "models"),
        "WANX_DATA_DIR": str(tmp_path / "data"),
        "WANX_CI_ROLE": "all" if os.environ.get("IMAGE_TEST_SOURCES") else "gateway",
    }
    files = ["-p", f"wanx-image-test-{os.getpid()}", "-f", "deploy/compose.yaml", "-f", "deploy/compose.ci.yaml"]

    def compose(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        argv = ["podman-compose", *files, *args]
        return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    try:
        up = compose("up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        waited = _wait(f"http://127.0.0.1:{port}/healthz", want=200, timeout=60)
        print(f"image-test: compose stack's /healthz after {waited:.1f} s")
        assert _status(f"http://127.0.0.1:{port}/prompt") == 401
        if os.environ.get("IMAGE_TEST_SOURCES"):
            ready = _wait(f"http://127.0.0.1:{port}/readyz", want=200, timeout=300)
            print(f"image-test: compose stack's /readyz after {ready:.1f} s")
    finally:
        compose("down", timeout=120)
