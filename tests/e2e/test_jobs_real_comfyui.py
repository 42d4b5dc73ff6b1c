"""A real ComfyUI (CPU) is SIGKILLed mid-job and restarted: the job service resubmits it and it completes once.

Needs an install at the pinned commits, found through ``WANX_COMFYUI_DIR`` or
``${XDG_CACHE_HOME:-~/.cache}/wanx/comfyui`` (made by ``wanx install --cpu``; docs/testing.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.real_comfy import COMFYUI, requires_comfyui
from tests.helpers.servers import PYTHON, REPO, Process, free_port
from tests.integration.jobs.conftest import call, get, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    requires_comfyui,
]

# Core nodes only, no model files: a blur big enough to take seconds on a CPU, then a saved PNG.
GRAPH = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 512, "height": 512, "batch_size": 1, "color": 1234567}},
    "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": 10.0}},
    "3": {"class_type": "ImageBlur", "inputs": {"image": ["2", 0], "blur_radius": 31, "sigma": 9.0}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "wanx-e2e"}},
}


@pytest.fixture
def comfyui(tmp_path: Path) -> Iterator[tuple[Process, str, Path]]:
    assert COMFYUI is not None
    port = free_port()
    dirs = {name: tmp_path / name for name in ("input", "output", "temp", "user")}
    for folder in dirs.values():
        folder.mkdir()
    argv = [str(COMFYUI / "venv/bin/python"), str(COMFYUI / "ComfyUI/main.py"), "--cpu", "--listen", "127.0.0.1"]
    argv += ["--port", str(port), "--disable-auto-launch", "--disable-all-custom-nodes"]
    for name, folder in dirs.items():
        argv += [f"--{name}-directory", str(folder)]
    url = f"http://127.0.0.1:{port}"
    process = Process(argv, ready_url=f"{url}/system_stats", log=tmp_path / "comfyui.log")
    process.start(timeout=300)
    try:
        yield process, url, dirs["output"]
    finally:
        process.kill()


def test_real_comfyui_killed_mid_job_finishes_the_job_once(comfyui: tuple[Process, str, Path], tmp_path: Path) -> None:
    backend, url, output = comfyui
    port = free_port()
    argv = [PYTHON, str(REPO / "tests/helpers/jobs_server.py"), "--port", str(port), "--upstream", url]
    argv += ["--journal", str(tmp_path / "jobs.sqlite3"), "--poll", "0.2"]
    server = Process(argv, ready_url=f"http://127.0.0.1:{port}/prompt", log=tmp_path / "jobs.log")
    server.start()
    try:
        prompt_id = str(uuid.uuid4())
        status, answer = call("POST", f"http://127.0.0.1:{port}/prompt", {"prompt": GRAPH, "prompt_id": prompt_id})
        assert status == 200, answer
        running = lambda: any(item[1] == prompt_id for item in get(f"{url}/queue")["queue_running"])  # noqa: E731
        wait_for(running, timeout=60, what="ComfyUI to start the job")
        backend.kill()
        backend.start(timeout=300)
        job = wait_for(
            lambda: (
                (j := get(f"http://127.0.0.1:{port}/wanx/jobs/{prompt_id}"))["state"]
                not in ("queued", "submitted", "running")
                and j
            ),
            timeout=400,
            what="the job to finish",
        )
        assert (job["state"], job["attempts"], job["crashes"]) == ("succeeded", 2, 1)
        assert get(f"{url}/history/{prompt_id}")[prompt_id]["status"]["status_str"] == "success"
        assert len(list(output.glob("wanx-e2e_*.png"))) == 1
    finally:
        server.kill()
