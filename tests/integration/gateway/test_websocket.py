"""The WebSocket relay: frames both ways, job events, close propagation in both directions."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.integration.gateway.conftest import Gate

pytestmark = pytest.mark.integration


async def _sockets(gate: Gate) -> list[str]:
    async with aiohttp.ClientSession() as s, s.get(gate.upstream + "/__fake/sockets") as r:
        return list(await r.json())


async def test_relay_both_ways_and_job_events(gate: Gate) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(gate.url + f"/ws?clientId=c1&token={gate.user}")
        first = json.loads((await ws.receive(timeout=5)).data)
        assert first["type"] == "status" and first["data"]["sid"] == "c1"
        await ws.send_str("hello")
        echo = json.loads((await ws.receive(timeout=5)).data)
        assert echo == {"type": "echo", "data": "hello"}
        graph = {"prompt": {"1": {"class_type": "PreviewImage", "inputs": {}}}, "client_id": "c1"}
        async with s.post(gate.url + "/api/prompt", json=graph, headers={"Authorization": f"Bearer {gate.user}"}) as r:
            prompt_id = (await r.json())["prompt_id"]
        kinds = []
        while "execution_success" not in kinds:
            msg = json.loads((await ws.receive(timeout=5)).data)
            if msg["data"].get("prompt_id") == prompt_id:
                kinds.append(msg["type"])
        assert kinds[0] == "execution_start" and "progress" in kinds
        await ws.close()
    for _ in range(50):
        if "c1" not in await _sockets(gate):
            break
        await asyncio.sleep(0.05)
    assert "c1" not in await _sockets(gate), "client close did not reach upstream"
    requests = await _sockets(gate)
    assert requests == []


async def test_upstream_close_reaches_client(gate: Gate) -> None:
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(gate.url + "/api/ws?clientId=c2", headers={"Authorization": f"Bearer {gate.admin}"})
        await ws.receive(timeout=5)
        gate.comfy.kill()
        msg = await ws.receive(timeout=10)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        await ws.close()
        gate.comfy.start()


async def test_websocket_auth_and_cross_site(gate: Gate) -> None:
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(gate.url + "/ws")
        assert err.value.status == 401
        cookie = {"Cookie": f"wanx_session={gate.user}"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(gate.url + "/ws", headers={**cookie, "Origin": "http://evil.example"})
        assert err.value.status == 403
        ws = await s.ws_connect(gate.url + "/ws", headers={**cookie, "Origin": gate.url})
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "status"
        await ws.close()
    async with aiohttp.ClientSession() as s, s.get(gate.upstream + "/__fake/requests") as r:
        seen = await r.text()
    assert gate.user not in seen and gate.admin not in seen
