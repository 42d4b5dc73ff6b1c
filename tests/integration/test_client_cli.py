"""`wanx run` as a real subprocess against the ComfyUI stand-in: outputs, failures, bad parameters, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.servers import PYTHON, REPO, free_port, run_process

pytestmark = pytest.mark.integration


def _wanx(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wanx", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    files = {"video": tmp_path / "clip.mp4", "mask": tmp_path / "mask.png", "image": tmp_path / "ref.png"}
    for path in files.values():
        path.write_bytes(b"not really " + path.suffix.encode())
    return files


def test_vace_replace_end_to_end(fake_comfy: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "result" / "edit.mp4"
    result = _wanx(
        "run", "vace", "--mode", "replace", "--server", fake_comfy,
        "--video", str(inputs["video"]), "--mask", str(inputs["mask"]),
        "--prompt", "a red car", "--param", "steps=6", "--param", "fps=12", "-o", str(out), "--no-progress",
        env={"WANX_TOKEN": "tok-from-env"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out) and out.stat().st_size > 0
    assert "queued vace-replace as prompt" in result.stderr
    (entry,) = _get(f"{fake_comfy}/history").values()
    graph = entry["prompt"][2]
    assert graph["40"]["inputs"]["video"] == "clip.mp4" and graph["50"]["inputs"]["image"] == "mask.png"
    assert graph["15"]["inputs"]["text"] == "a red car" and graph["24"]["inputs"]["steps"] == 6
    assert graph["40"]["inputs"]["force_rate"] == 12 and graph["32"]["inputs"]["frame_rate"] == 12
    assert "18" not in graph and "reference_image" not in graph["17"]["inputs"]  # no --image given
    requests = [r for r in _get(f"{fake_comfy}/__fake/requests") if "aiohttp" in r["headers"].get("User-Agent", "")]
    assert requests and all(r["headers"].get("Authorization") == "Bearer tok-from-env" for r in requests)
    assert [r["path"] for r in requests].count("/upload/image") == 2


def test_failed_job_exits_1_with_node_and_message(fake_comfy: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    result = _wanx(
        "run", "wanx-21", "--server", fake_comfy, "--image", str(inputs["image"]),
        "--prompt", "__FAKE_FAIL__", "-o", str(tmp_path / "x.mp4"), "--no-progress",
    )  # fmt: skip
    assert result.returncode == 1
    assert "failed at node 53 (WanVideoDecode): RuntimeError: fake failure requested by the graph" in result.stderr
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["--param", "frames=80"], "frames: 80 is not 4n+1", id="frames"),
        pytest.param(["--param", "width=830"], "width: 830 is not a multiple of 16", id="width"),
        pytest.param(["--param", "strength=2"], "expected NAME=VALUE with NAME one of", id="unknown"),
        pytest.param(["--video", "clip.mp4"], "wanx-21 takes no video", id="wrong-input"),
        pytest.param(["--mode", "replace"], "--mode applies to vace only", id="mode"),
    ],
)
def test_bad_arguments_fail_before_contacting_the_server(
    fake_comfy: str, inputs: dict[str, Path], args: list[str], words: str
) -> None:
    result = _wanx(
        "run", "wanx-21", "--server", fake_comfy, "--image", str(inputs["image"]), *args,
        cwd=inputs["video"].parent,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert words in result.stderr
    assert not [r for r in _get(f"{fake_comfy}/__fake/requests") if r["path"] != "/system_stats"]


def test_missing_required_input(fake_comfy: str) -> None:
    result = _wanx("run", "vace", "--mode", "restyle", "--server", fake_comfy)
    assert result.returncode == 1 and "parameter video is required" in result.stderr


def test_ctrl_c_prints_the_prompt_id(tmp_path: Path, inputs: dict[str, Path]) -> None:
    port = free_port()
    argv = [PYTHON, str(REPO / "tests/helpers/fake_comfy.py"), "--port", str(port), "--root", str(tmp_path / "c")]
    with run_process(
        [*argv, "--steps", "100", "--step-delay", "0.1"], ready_url=f"http://127.0.0.1:{port}/system_stats"
    ):
        proc = subprocess.Popen(
            [sys.executable, "-m", "wanx", "run", "wanx-21", "--server", f"http://127.0.0.1:{port}",
             "--image", str(inputs["image"]), "-o", str(tmp_path / "o.mp4"), "--no-progress"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not _get(f"http://127.0.0.1:{port}/queue")["queue_running"]:
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        running = _get(f"http://127.0.0.1:{port}/queue")["queue_running"]
    assert proc.returncode == 130
    prompt_id = running[0][1]
    assert f"job {prompt_id} is still queued or running" in err
