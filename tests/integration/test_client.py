"""ComfyClient against the ComfyUI stand-in on 127.0.0.1: success, failures, restart mid-job, timeout, retries."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.servers import PYTHON, REPO, Process, free_port, run_process
from tests.unit.workflows.conftest import WORKFLOWS, shipped
from wanx.client import ComfyClient, Progress
from wanx.errors import ComfyRequestError, ComfyUnavailable, JobFailed, JobLost, JobTimeout
from wanx.workflows.params import fill_params, load_workflows

pytestmark = pytest.mark.integration
SPECS = load_workflows(WORKFLOWS)
FAKE = REPO / "tests/helpers/fake_comfy.py"


def _graph(prompt: str = "a cat walks") -> dict[str, Any]:
    return fill_params(shipped("wanx-21"), SPECS["wanx-21"], {"image": "cat.png", "prompt": prompt})


def _requests(base: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base}/__fake/requests", timeout=5) as resp:
        data: list[dict[str, Any]] = json.load(resp)
    return data


def _fake_argv(port: int, root: Path, *extra: str) -> list[str]:
    return [PYTHON, str(FAKE), "--port", str(port), "--root", str(root), *extra]


@pytest.fixture
def slow_comfy(tmp_path: Path) -> Iterator[tuple[str, Process]]:
    """A stand-in whose jobs take about 2 s (20 steps of 0.1 s), killable and restartable."""
    port = free_port()
    argv = _fake_argv(port, tmp_path / "slow", "--steps", "20", "--step-delay", "0.1")
    with run_process(argv, ready_url=f"http://127.0.0.1:{port}/system_stats") as process:
        yield f"http://127.0.0.1:{port}", process


async def test_upload_run_download(fake_comfy: str, tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG fake image")
    events: list[Progress] = []
    async with ComfyClient(fake_comfy, token="s3cret") as comfy:
        first = await comfy.upload(image)
        second = await comfy.upload(image)
        assert (first, second) == ("cat.png", "cat (1).png")  # the server renames; the client uses its answer
        graph = fill_params(shipped("wanx-21"), SPECS["wanx-21"], {"image": second})
        result = await comfy.run(graph, timeout=30, on_progress=events.append)
        assert [(o.node_id, o.kind, o.type) for o in result.outputs] == [("54", "gifs", "output")]
        dest = await comfy.download(result.outputs[0], tmp_path / "out.mp4")
    expected = hashlib.sha256(f"{result.prompt_id}:54".encode()).digest() * 64
    assert dest.read_bytes() == expected
    assert any(e.event == "progress" and e.node == "52" and e.max == 3 for e in events)
    seen = _requests(fake_comfy)
    ours = [r for r in seen if r["path"] != "/system_stats"]  # the fixture polls that one to see it is up
    assert ours and all(r["headers"].get("Authorization") == "Bearer s3cret" for r in ours)
    submitted = [r for r in seen if r["path"] == "/prompt"]
    assert len(submitted) == 1
    ws = [r for r in seen if r["path"].startswith("/ws")]
    assert ws and ws[0]["query"]["clientId"] == comfy.client_id


async def test_execution_error_names_the_node(fake_comfy: str) -> None:
    async with ComfyClient(fake_comfy) as comfy:
        with pytest.raises(JobFailed) as info:
            await comfy.run(_graph("__FAKE_FAIL__"), timeout=30)
    assert info.value.node_id == "53"
    assert "failed at node 53 (WanVideoDecode): RuntimeError: fake failure requested by the graph" in str(info.value)


async def test_error_found_in_history_without_websocket_events(fake_comfy: str) -> None:
    async with ComfyClient(fake_comfy) as comfy:
        prompt_id = await comfy.submit(_graph("__FAKE_FAIL__"))
        for _ in range(100):
            if await comfy.history(prompt_id):
                break
            await asyncio.sleep(0.05)
    # a second client that missed every event still sees the failure in /history
    async with ComfyClient(fake_comfy, poll_interval=0.05) as late:
        with pytest.raises(JobFailed, match="failed at node 53"):
            await late.wait(prompt_id, timeout=10)


async def test_rejected_graph_shows_the_server_message(fake_comfy: str) -> None:
    async with ComfyClient(fake_comfy) as comfy:
        with pytest.raises(ComfyRequestError, match="HTTP 400: Prompt has no outputs") as info:
            await comfy.submit({"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}}})
    assert info.value.status == 400


async def test_server_restart_mid_job_is_noticed_and_resubmitted(slow_comfy: tuple[str, Process]) -> None:
    base, process = slow_comfy
    started = threading.Event()

    def on_progress(event: Progress) -> None:
        if event.event == "progress":
            started.set()

    def restart() -> None:
        started.wait(20)
        process.kill()
        time.sleep(0.5)
        process.start()

    restarter = threading.Thread(target=restart)
    restarter.start()
    submitted: list[str] = []
    async with ComfyClient(base, poll_interval=0.1, retry_delay=0.1, retries=8) as comfy:
        result = await comfy.run(_graph(), timeout=60, on_progress=on_progress, on_submit=submitted.append)
    restarter.join(30)
    assert len(submitted) == 2 and result.prompt_id == submitted[1]
    assert result.outputs[0].node_id == "54"


async def test_lost_job_without_resubmit_fails_clearly(slow_comfy: tuple[str, Process]) -> None:
    base, process = slow_comfy
    async with ComfyClient(base, poll_interval=0.1, retry_delay=0.1, retries=8) as comfy:
        prompt_id = await comfy.submit(_graph())
        await asyncio.sleep(0.3)
        await asyncio.to_thread(process.kill)
        await asyncio.to_thread(process.start)
        with pytest.raises(JobLost, match=f"job {prompt_id} is gone"):
            await comfy.wait(prompt_id, timeout=30)


async def test_timeout_leaves_the_job_identifiable(slow_comfy: tuple[str, Process]) -> None:
    base, _ = slow_comfy
    async with ComfyClient(base) as comfy:
        began = time.monotonic()
        with pytest.raises(JobTimeout) as info:
            await comfy.run(_graph(), timeout=0.5)
        assert time.monotonic() - began < 5
    assert info.value.prompt_id in str(info.value) and info.value.prompt_id in info.value.hint


async def test_connection_errors_are_retried(tmp_path: Path) -> None:
    port = free_port()
    process = Process(_fake_argv(port, tmp_path / "late"), ready_url=f"http://127.0.0.1:{port}/system_stats")
    starter = threading.Timer(0.8, process.start)
    starter.start()
    try:
        async with ComfyClient(f"http://127.0.0.1:{port}", retries=8, retry_delay=0.2) as comfy:
            result = await comfy.run(_graph(), timeout=30)
        assert result.outputs
    finally:
        starter.join(30)
        process.kill()


async def test_unreachable_server_gives_up_with_a_clear_error() -> None:
    async with ComfyClient(f"http://127.0.0.1:{free_port()}", retries=2, retry_delay=0.05) as comfy:
        with pytest.raises(ComfyUnavailable, match="POST /prompt failed after 3 tries"):
            await comfy.submit(_graph())
