"""Following the hub's redirect to its CDN never carries the Hugging Face token to another host."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from aiohttp import web

from tests.helpers.servers import free_port, run_app
from wanx.lockfile import Source, SourceKind
from wanx.sources import Origin
from wanx.transfer import HashingWriter, receive

pytestmark = pytest.mark.integration

DATA = os.urandom(100_000)


@pytest.mark.parametrize(("host", "token_seen"), [("127.0.0.1", "Bearer hf_x"), ("localhost", None)])
def test_authorization_stays_on_its_origin(tmp_path: Path, host: str, token_seen: str | None) -> None:
    port = free_port()
    seen: list[str | None] = []

    async def resolve(request: web.Request) -> web.Response:
        assert request.headers.get("Authorization") == "Bearer hf_x"
        return web.Response(status=302, headers={"Location": f"http://{host}:{port}/cdn"})

    async def cdn(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(body=DATA)

    def app() -> web.Application:
        application = web.Application()
        application.router.add_get("/resolve", resolve)
        application.router.add_get("/cdn", cdn)
        return application

    with run_app(app, port=port) as base:
        origin = Origin(
            source=Source(kind=SourceKind.HF, repo="o/r", path="f"),
            label="hf",
            url=f"{base}/resolve",
            headers={"authorization": "Bearer hf_x"},
        )
        writer = HashingWriter(
            tmp_path / "p", offset=0, sha=None, progress=lambda n: None, cancel=threading.Event(), label="f"
        )
        receive(origin, writer, expected_size=len(DATA))
        assert writer.finish() == hashlib.sha256(DATA).hexdigest()
    assert seen == [token_seen]
