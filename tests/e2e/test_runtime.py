"""End to end on a real ComfyUI (CPU): the no-Docker stack (`wanx serve`) with the gateway in front.

Needs an install made by `wanx install --cpu` at the pinned commits, found through ``WANX_COMFYUI_DIR`` or
``${XDG_CACHE_HOME:-~/.cache}/wanx/comfyui`` (docs/testing.md says how to make one). Checks: the install is at
the pins, the time from start to ``/readyz``, both shipped workflows pass ComfyUI's own validation with 0-byte
model files at the models.lock.yaml paths, and LoadImage -> VHS_VideoCombine makes an MP4 that ffprobe reads,
fetched through the gateway with a token.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.real_comfy import COMFYUI, requires_comfyui
from tests.helpers.servers import PYTHON, REPO, free_port
from wanx.comfylock import load_comfylock

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    requires_comfyui,
]


@dataclass(frozen=True)
class Stack:
    url: str
    token: str
    data: Path
    ready_seconds: float
    log: Path


def request(
    stack: Stack, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None, token: bool = True
) -> tuple[int, bytes]:
    auth = {"Authorization": f"Bearer {stack.token}"} if token else {}
    req = urllib.request.Request(stack.url + path, data=body, headers={**auth, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def png(width: int = 64, height: int = 48) -> bytes:
    """A solid-colour RGB PNG, written by hand so the test needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    rows = b"".join(b"\x00" + bytes((200, 120, 40)) * width for _ in range(height))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes((8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def small_mp4(folder: Path) -> bytes:
    """One second of 64x48 video, made with the ffmpeg that imageio-ffmpeg ships in ComfyUI's venv."""
    assert COMFYUI is not None
    find = "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"
    ffmpeg = subprocess.run([str(COMFYUI / "venv/bin/python"), "-c", find], capture_output=True, text=True, check=True)
    out = folder / "input.mp4"
    argv = [ffmpeg.stdout.strip(), "-v", "error", "-f", "lavfi", "-i", "color=c=teal:s=64x48:d=1:r=16"]
    subprocess.run([*argv, "-pix_fmt", "yuv420p", "-y", str(out)], check=True)
    return out.read_bytes()


def upload(stack: Stack, name: str, content: bytes | None = None, kind: str = "image/png") -> str:
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'.encode())
    body.write(f"Content-Type: {kind}\r\n\r\n".encode() + (content or png()) + b"\r\n")
    body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\ntrue\r\n'.encode())
    body.write(f"--{boundary}--\r\n".encode())
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    status, answer = request(stack, "/api/upload/image", body=body.getvalue(), headers=headers)
    assert status == 200, answer
    return str(json.loads(answer)["name"])


def submit(stack: Stack, graph: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"prompt": graph, "client_id": str(uuid.uuid4()), "prompt_id": str(uuid.uuid4())}).encode()
    status, answer = request(stack, "/api/prompt", body=body, headers={"Content-Type": "application/json"})
    return status, json.loads(answer)


def placeholder_models(models: Path) -> list[str]:
    lockfile = pytest.importorskip("wanx.lockfile", reason="needs wanx.lockfile (models branch)")
    entries = lockfile.load_lockfile(REPO / "models.lock.yaml").entries
    for entry in entries:
        target = models / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
    return [entry.path for entry in entries]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert COMFYUI is not None
    pytest.importorskip("wanx.gateway", reason="needs the gateway package (wanx.gateway, branch gateway)")
    root = tmp_path_factory.mktemp("e2e")
    models, data = root / "models", root / "data"
    placeholder_models(models)
    port, comfy_port, token = free_port(), free_port(), secrets.token_urlsafe(24)
    argv = [PYTHON, "-m", "wanx", "serve", "--prefix", str(COMFYUI), "--models-dir", str(models)]
    argv += ["--data-dir", str(data), "--cpu", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--comfy-port", str(comfy_port)]
    if importlib.util.find_spec("wanx.workflows") is None:
        argv.append("--no-workflows")  # the UI preload needs the workflows package
    env = {**os.environ, "WANX_TOKEN": token, "WANX_LOG_FORMAT": "text"}
    log = root / "serve.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_ready(url, proc, log, timeout=300)
        yield Stack(url, token, data, round(ready - started, 1), log)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, *, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"wanx serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic()
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    pytest.fail(f"/readyz not 200 within {timeout} s:\n{log.read_text()[-4000:]}")


def test_install_is_at_the_pins() -> None:
    assert COMFYUI is not None
    lock = load_comfylock(REPO / "comfyui.lock.yaml")
    for repo in lock.repos:
        folder = COMFYUI / "ComfyUI" if repo is lock.comfyui else COMFYUI / "ComfyUI/custom_nodes" / repo.name
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert head.stdout.strip() == repo.commit, repo.name
    assert not (COMFYUI / "ComfyUI/custom_nodes/ComfyUI-Manager").exists()


def test_ready_through_the_gateway(stack: Stack, record_property: Any) -> None:
    record_property("start_to_readyz_seconds", stack.ready_seconds)
    print(f"\nstart to /readyz: {stack.ready_seconds} s")
    status, body = request(stack, "/readyz", token=False)
    assert status == 200, body
    status, _ = request(stack, "/api/system_stats", token=False)
    assert status == 401
    status, body = request(stack, "/api/system_stats")
    assert status == 200
    assert json.loads(body)["system"]["comfyui_version"] == "0.3.76"


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "workflows/api").glob("*.json")) or ["(none)"])
def test_shipped_workflow_passes_comfyui_validation(stack: Stack, name: str, tmp_path: Path) -> None:
    path = REPO / "workflows/api" / f"{name}.json"
    if not path.is_file():
        pytest.skip("no shipped workflows in workflows/api (workflows branch)")
    graph = json.loads(path.read_text())
    for node in graph.values():  # every input file the graph names, uploaded as a user would
        if node["class_type"] in ("LoadImage", "LoadImageMask"):
            node["inputs"]["image"] = upload(stack, "wanx-e2e.png")
        elif node["class_type"] == "VHS_LoadVideo":
            node["inputs"]["video"] = upload(stack, "wanx-e2e.mp4", small_mp4(tmp_path), "video/mp4")
    status, answer = submit(stack, graph)
    assert status == 200, answer
    assert answer["node_errors"] == {}


def test_cpu_graph_makes_an_mp4_fetched_through_the_gateway(stack: Stack, tmp_path: Path) -> None:
    image = upload(stack, "wanx-frame.png")
    combine = {
        "images": ["1", 0],
        "frame_rate": 8,
        "loop_count": 0,
        "filename_prefix": "wanx-e2e",
        "format": "video/h264-mp4",
        "pingpong": False,
        "save_output": True,
        "pix_fmt": "yuv420p",
        "crf": 19,
        "save_metadata": False,
        "trim_to_audio": False,
    }
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "VHS_VideoCombine", "inputs": combine},
    }
    status, answer = submit(stack, graph)
    assert status == 200, answer
    prompt_id = answer["prompt_id"]
    entry = _wait_history(stack, prompt_id, timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    video = entry["outputs"]["2"]["gifs"][0]
    query = f"/api/view?filename={video['filename']}&subfolder={video['subfolder']}&type={video['type']}"
    assert request(stack, query, token=False)[0] == 401
    status, body = request(stack, query)
    assert status == 200
    mp4 = tmp_path / video["filename"]
    mp4.write_bytes(body)
    assert (stack.data / "output" / video["filename"]).read_bytes() == body
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed (apt-get install ffmpeg): the MP4 was made but not probed")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json", str(mp4)],
        capture_output=True,
        text=True,
        check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream == {"codec_name": "h264", "width": 64, "height": 48}


def _wait_history(stack: Stack, prompt_id: str, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = request(stack, f"/api/history/{prompt_id}")
        assert status == 200, body
        history = json.loads(body)
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            entry: dict[str, Any] = history[prompt_id]
            return entry
        time.sleep(0.5)
    pytest.fail(f"prompt {prompt_id} did not finish within {timeout} s")
