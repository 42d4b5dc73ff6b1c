"""Websocket events reach only the client that owns the job, and the final ones only after the journal has it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.integration.jobs.conftest import Comfy, JobsServer, graph

pytestmark = pytest.mark.integration


async def _collect(ws: aiohttp.ClientWebSocketResponse, prompt_id: str) -> list[dict[str, Any]]:
    """Messages until ``executing {node: null}`` for ``prompt_id``."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(msg.data)
            seen.append(message)
            data = message.get("data", {})
            if message["type"] == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                return seen
    raise AssertionError("socket closed early")


async def test_each_client_sees_only_its_own_jobs(
    comfy_factory: Callable[..., Comfy], jobs_factory: Callable[[list[str]], JobsServer]
) -> None:
    comfy = comfy_factory(step_delay=0.05)
    server = jobs_factory([comfy.url])
    ids = {"alice": str(uuid.uuid4()), "bob": str(uuid.uuid4())}
    async with aiohttp.ClientSession() as session:
        sockets = {name: await session.ws_connect(f"{server.url}/ws?clientId={name}") for name in ids}
        for name, ws in sockets.items():
            hello = await ws.receive_json()
            assert hello["type"] == "status" and hello["data"]["sid"] == name
        for name, prompt_id in ids.items():
            body = {"prompt": graph(name), "prompt_id": prompt_id, "client_id": name}
            async with session.post(f"{server.url}/prompt", json=body) as resp:
                assert resp.status == 200
        seen = {name: await _collect(ws, ids[name]) for name, ws in sockets.items()}
        for name, messages in seen.items():
            other = ids["bob" if name == "alice" else "alice"]
            assert other not in json.dumps(messages)
            kinds = [m["type"] for m in messages if m["data"].get("prompt_id") == ids[name]]
            assert kinds[0] == "execution_start"
            assert "progress" in kinds and "executed" in kinds
            assert kinds[-2:] == ["execution_success", "executing"]
            # the final events come after the journal has the result
            async with session.get(f"{server.url}/history/{ids[name]}") as resp:
                entry = (await resp.json())[ids[name]]
            assert entry["status"]["status_str"] == "success"
        for ws in sockets.values():
            await ws.close()
