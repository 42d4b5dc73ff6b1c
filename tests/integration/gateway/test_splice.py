"""Large answers of known length go socket to socket (splice): exact bytes, audit, a client that leaves."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading

import aiohttp
import pytest

from tests.integration.gateway.conftest import Gate
from wanx.gateway import splice
from wanx.gateway.proxy import SPLICE_MIN

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="os.splice needs Linux and Python >= 3.10")

SIZE = 2 * SPLICE_MIN + 12345


def _random_output(gate: Gate) -> str:
    data = os.urandom(SIZE)
    out = gate.comfy_root / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "rand.bin").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


async def test_large_view_arrives_exactly_and_is_audited(gate: Gate, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = _random_output(gate)
    calls: list[int] = []
    real = splice.splice_exact

    async def counted(src: int, dst: int, length: int, **timeouts: float) -> None:
        calls.append(length)
        await real(src, dst, length, **timeouts)

    monkeypatch.setattr(splice, "splice_exact", counted)
    headers = {"Authorization": f"Bearer {gate.user}"}
    async with aiohttp.ClientSession() as s:
        for _ in range(2):  # twice: the client connection stays usable after a spliced answer
            async with s.get(f"{gate.url}/api/view?filename=rand.bin&type=output", headers=headers) as r:
                assert r.status == 200
                assert r.content_length == SIZE
                assert hashlib.sha256(await r.read()).hexdigest() == digest
    assert len(calls) == 2 and all(0 < n <= SIZE for n in calls)  # the spliced path, not the copying one
    lines = [line for line in gate.audit_lines() if line["path"] == "/api/view"]
    assert len(lines) == 2
    assert all(line["status"] == 200 and line["bytes"] == SIZE for line in lines)


async def test_client_leaving_mid_body_leaves_the_gateway_serving(gate: Gate) -> None:
    _random_output(gate)
    host, port = gate.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = f"GET /api/view?filename=rand.bin&type=output HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gate.user}"
        sock.sendall(head.encode() + b"\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    headers = {"Authorization": f"Bearer {gate.user}"}
    async with aiohttp.ClientSession() as s, s.get(f"{gate.url}/api/system_stats", headers=headers) as r:
        assert r.status == 200


async def test_splice_exact_reports_a_short_source() -> None:
    src_a, src_b = socket.socketpair()
    dst_a, dst_b = socket.socketpair()
    for s in (src_a, src_b, dst_a, dst_b):
        s.setblocking(False)
    src_b.sendall(b"x" * 1000)
    src_b.close()
    received = bytearray()

    def drain() -> None:
        dst_b.setblocking(True)
        while chunk := dst_b.recv(65536):
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    with pytest.raises(ConnectionError, match="1000 of 5000"):
        await asyncio.wait_for(splice.splice_exact(src_a.fileno(), dst_a.fileno(), 5000, read_timeout_s=5), 10)
    dst_a.close()
    reader.join(5)
    dst_b.close()
    src_a.close()
    assert bytes(received) == b"x" * 1000
