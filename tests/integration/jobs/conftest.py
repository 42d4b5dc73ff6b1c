"""Processes for the durability tests: ComfyUI stand-ins and the job service, each killable and restartable."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.servers import PYTHON, REPO, Process, free_port

GRAPH: dict[str, Any] = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
    "2": {"class_type": "VHS_VideoCombine", "inputs": {"filename_prefix": "T", "images": ["1", 0]}},
}


def graph(tag: str = "", *, crash: bool = False) -> dict[str, Any]:
    """A small I2V-like graph; ``tag`` makes bodies differ, ``crash`` makes the stand-in die when it starts."""
    text = "__FAKE_CRASH__" if crash else tag
    return {**GRAPH, "1": {"class_type": "LoadImage", "inputs": {"image": f"x{text}.png"}}}


def call(method: str, url: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(
                raw
            ) if raw and resp.headers.get_content_type() == "application/json" else raw
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw.startswith(b"{") else raw


def get(url: str) -> Any:
    status, body = call("GET", url)
    assert status == 200, (url, status, body)
    return body


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Comfy:
    """A ComfyUI stand-in process on a fixed port."""

    def __init__(self, root: Path, *, step_delay: float, steps: int = 3) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [PYTHON, str(REPO / "tests/helpers/fake_comfy.py"), "--port", str(self.port), "--root", str(root)]
        argv += ["--step-delay", str(step_delay), "--steps", str(steps)]
        self.process = Process(argv, ready_url=f"{self.url}/system_stats")

    def posts(self) -> list[str]:
        """prompt ids POSTed to this process since it (re)started."""
        requests = get(f"{self.url}/__fake/requests")
        return [r["path"] for r in requests if r["method"] == "POST" and r["path"].endswith("/prompt")]

    def queue_ids(self) -> set[str]:
        queue = get(f"{self.url}/queue")
        return {item[1] for item in queue["queue_running"] + queue["queue_pending"]}

    def running_id(self) -> str | None:
        running = get(f"{self.url}/queue")["queue_running"]
        return running[0][1] if running else None


class JobsServer:
    """The job service (journal + runners + ComfyUI routes) as its own process."""

    def __init__(self, journal: Path, upstreams: list[str], log: Path, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [PYTHON, str(REPO / "tests/helpers/jobs_server.py"), "--port", str(self.port)]
        argv += ["--journal", str(journal), "--poll", "0.1", *extra]
        for upstream in upstreams:
            argv += ["--upstream", upstream]
        self.process = Process(argv, ready_url=f"{self.url}/prompt", log=log)

    def submit(self, body: dict[str, Any]) -> tuple[int, Any]:
        return call("POST", f"{self.url}/prompt", body)

    def job(self, prompt_id: str) -> dict[str, Any]:
        return get(f"{self.url}/wanx/jobs/{prompt_id}")  # type: ignore[no-any-return]

    def wait_state(self, prompt_id: str, *states: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_for(  # type: ignore[no-any-return]
            lambda: (job := self.job(prompt_id))["state"] in states and job,
            timeout=timeout,
            what=f"job {prompt_id} to reach {states}",
        )


@pytest.fixture
def comfy_factory(tmp_path: Path) -> Iterator[Callable[..., Comfy]]:
    made: list[Comfy] = []

    def make(*, step_delay: float = 0.05, start: bool = True) -> Comfy:
        comfy = Comfy(tmp_path / f"comfy{len(made)}", step_delay=step_delay)
        made.append(comfy)
        if start:
            comfy.process.start()
        return comfy

    yield make
    for comfy in made:
        comfy.process.kill()


@pytest.fixture
def jobs_factory(tmp_path: Path) -> Iterator[Callable[..., JobsServer]]:
    made: list[JobsServer] = []

    def make(upstreams: list[str], *extra: str) -> JobsServer:
        log = tmp_path / f"jobs{len(made)}.log"
        server = JobsServer(tmp_path / "journal" / "jobs.sqlite3", upstreams, log, extra)
        made.append(server)
        server.process.start()
        return server

    yield make
    for server in made:
        server.process.kill()
