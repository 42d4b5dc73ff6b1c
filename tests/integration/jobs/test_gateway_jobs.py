"""The job system inside `wanx gateway`: tokens own jobs, the pinned schema validates, two GPUs share work."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers.servers import PYTHON, REPO, Process, free_port
from tests.integration.jobs.conftest import Comfy, wait_for
from wanx.gateway.tokens import Role, add_token

pytestmark = pytest.mark.integration

I2V = json.loads((REPO / "workflows/api/wanx-21.json").read_text())


def i2v(seed: int) -> dict[str, Any]:
    graph = json.loads(json.dumps(I2V))
    graph["52"]["inputs"]["seed"] = seed
    return graph  # type: ignore[no-any-return]


@dataclass
class Gateway:
    url: str
    process: Process
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.tokens[who]}", "Content-Type": "application/json"}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, who: str, path: str) -> Any:
        status, body = self.call(who, "GET", path)
        assert status == 200, (path, status, body)
        return body

    def state(self, who: str, prompt_id: str) -> dict[str, Any]:
        return self.get(who, f"/api/wanx/jobs/{prompt_id}")  # type: ignore[no-any-return]

    def wait_state(self, prompt_id: str, *states: str) -> dict[str, Any]:
        return wait_for(  # type: ignore[no-any-return]
            lambda: (job := self.state("ops", prompt_id))["state"] in states and job, what=f"{prompt_id} {states}"
        )


@pytest.fixture
def two_gpus(comfy_factory: Callable[..., Comfy], tmp_path: Path) -> Iterator[tuple[Gateway, Comfy, Comfy]]:
    first, second = comfy_factory(step_delay=0.2), comfy_factory(step_delay=0.2)
    tokens_file = tmp_path / "tokens.json"
    tokens = {
        "ops": add_token(tokens_file, name="ops", role=Role.ADMIN),
        "alice": add_token(tokens_file, name="alice", role=Role.USER),
        "bob": add_token(tokens_file, name="bob", role=Role.USER),
    }
    port = free_port()
    argv = [PYTHON, "-m", "wanx", "gateway", "--listen", f"127.0.0.1:{port}", "--tokens-file", str(tokens_file)]
    argv += ["--upstream", first.url, "--upstream", second.url]
    env = {"WANX_DATA_DIR": str(tmp_path / "data"), "WANX_LOG_LEVEL": "warning"}
    process = Process(argv, ready_url=f"http://127.0.0.1:{port}/healthz", env=env, log=tmp_path / "gateway.log")
    process.start()
    try:
        yield Gateway(f"http://127.0.0.1:{port}", process, tokens), first, second
    finally:
        process.kill()
    assert (tmp_path / "data" / "gateway" / "jobs.sqlite3").is_file()


def test_jobs_are_owned_by_tokens_and_spread_over_both_backends(two_gpus: tuple[Gateway, Comfy, Comfy]) -> None:
    gateway, first, second = two_gpus
    mine = [str(uuid.uuid4()) for _ in range(3)]
    theirs = str(uuid.uuid4())
    for seed, prompt_id in enumerate(mine):
        assert gateway.call("alice", "POST", "/prompt", {"prompt": i2v(seed), "prompt_id": prompt_id})[0] == 200
    assert gateway.call("bob", "POST", "/api/prompt", {"prompt": i2v(9), "prompt_id": theirs})[0] == 200
    queue = gateway.get("bob", "/queue")
    assert {item[1] for item in queue["queue_running"] + queue["queue_pending"]} == {theirs}
    status, taken = gateway.call("bob", "POST", "/prompt", {"prompt": i2v(0), "prompt_id": mine[0]})
    assert status == 409 and taken["error"]["type"] == "prompt_id_conflict"
    for prompt_id in [*mine, theirs]:
        gateway.wait_state(prompt_id, "succeeded")
    assert set(gateway.get("alice", "/history")) == set(mine)
    assert set(gateway.get("ops", "/history")) == {*mine, theirs}
    assert gateway.get("bob", f"/history/{mine[0]}") == {}
    assert gateway.call("bob", "GET", f"/wanx/jobs/{mine[0]}")[0] == 404
    assert first.posts() and second.posts()
    video = gateway.get("alice", f"/history/{mine[0]}")[mine[0]]["outputs"]["54"]["gifs"][0]
    assert gateway.call("bob", "GET", f"/view?filename={video['filename']}&type=output")[0] == 404


def test_schema_errors_come_back_at_once_in_comfyui_shape(two_gpus: tuple[Gateway, Comfy, Comfy]) -> None:
    gateway, first, _ = two_gpus
    graph = i2v(1)
    del graph["52"]["inputs"]["steps"]
    status, body = gateway.call("alice", "POST", "/prompt", {"prompt": graph})
    assert status == 400
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["52"]["errors"][0]["type"] == "required_input_missing"
    assert gateway.get("alice", "/queue") == {"queue_running": [], "queue_pending": []}
    assert first.posts() == []


def test_gateway_killed_mid_job_resumes_from_its_journal(two_gpus: tuple[Gateway, Comfy, Comfy]) -> None:
    gateway, first, second = two_gpus
    prompt_id = str(uuid.uuid4())
    assert gateway.call("alice", "POST", "/prompt", {"prompt": i2v(5), "prompt_id": prompt_id})[0] == 200
    wait_for(lambda: prompt_id in (first.queue_ids() | second.queue_ids()), what="a backend to take the job")
    gateway.process.kill()
    gateway.process.start()
    job = gateway.wait_state(prompt_id, "succeeded")
    assert job["attempts"] == 1
    assert len(first.posts()) + len(second.posts()) == 1


async def test_a_token_cannot_listen_in_on_another_tokens_client_id(two_gpus: tuple[Gateway, Comfy, Comfy]) -> None:
    gateway, _, _ = two_gpus
    prompt_id = str(uuid.uuid4())
    ws_url = gateway.url.replace("http", "ws") + "/ws?clientId=shared"
    async with aiohttp.ClientSession() as session:
        spy = await session.ws_connect(ws_url, headers={"Authorization": f"Bearer {gateway.tokens['bob']}"})
        owner = await session.ws_connect(ws_url, headers={"Authorization": f"Bearer {gateway.tokens['alice']}"})
        body = {"prompt": i2v(7), "prompt_id": prompt_id, "client_id": "shared"}
        headers = {"Authorization": f"Bearer {gateway.tokens['alice']}"}
        async with session.post(f"{gateway.url}/prompt", json=body, headers=headers) as resp:
            assert resp.status == 200
        seen: list[str] = []
        async with asyncio.timeout(20):
            while not any('"execution_success"' in m for m in seen):
                seen.append((await owner.receive()).data)
        spied: list[str] = []
        with_timeout = asyncio.timeout(0.5)
        try:
            async with with_timeout:
                while True:
                    spied.append((await spy.receive()).data)
        except TimeoutError:
            pass
        assert any(prompt_id in m for m in seen)
        assert not any(prompt_id in m for m in spied)
        await spy.close()
        await owner.close()
