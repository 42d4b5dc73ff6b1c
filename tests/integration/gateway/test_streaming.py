"""1 GiB down and up through a ``wanx gateway`` subprocess with bounded memory (RSS sampled by psutil)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.helpers.servers import PYTHON, REPO, free_port, run_process
from tests.integration.gateway.conftest import start_comfy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GIB = 1 << 30
RSS_GROWTH_LIMIT = 64 << 20


class PeakRss:
    """Sample a process's resident memory every 20 ms in a thread; keep the peak."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def growth(self) -> int:
        return self.peak - self.base


@pytest.fixture
def gateway_proc(tmp_path: Path) -> Iterator[tuple[str, str, Path, int]]:
    root = tmp_path / "comfy"
    comfy = start_comfy(root)
    upstream = comfy.ready_url.removesuffix("/system_stats")
    port = free_port()
    token = "t" * 43
    argv = [str(REPO / ".venv/bin/wanx"), "gateway", "--upstream", upstream, "--listen", f"127.0.0.1:{port}"]
    if not Path(argv[0]).exists():
        argv[0:1] = [PYTHON, "-m", "wanx"]
    env = {"WANX_TOKEN": token, "WANX_GATEWAY_MAX_UPLOAD_MB": "2048", "WANX_DATA_DIR": str(tmp_path / "data")}
    try:
        with run_process(argv, ready_url=f"http://127.0.0.1:{port}/healthz", env=env, log=tmp_path / "gw.log") as gw:
            assert gw.proc is not None
            yield f"http://127.0.0.1:{port}", token, root, gw.proc.pid
    finally:
        comfy.kill()
    assert token not in (tmp_path / "gw.log").read_text()


async def test_one_gib_download(gateway_proc: tuple[str, str, Path, int], tmp_path: Path) -> None:
    url, token, root, pid = gateway_proc
    big = root / "output" / "big.bin"
    big.parent.mkdir(parents=True, exist_ok=True)
    with open(big, "wb") as fh:  # sparse: costs no disk
        fh.truncate(GIB)
    received = 0
    started = time.monotonic()
    async with aiohttp.ClientSession() as s:
        await (await s.get(url + f"/view?filename=x&token={token}")).read()  # warm the connection pool
        with PeakRss(pid) as rss:
            async with s.get(url + f"/api/view?filename=big.bin&type=output&token={token}") as r:
                assert r.status == 200 and r.content_length == GIB
                async for chunk in r.content.iter_chunked(1 << 20):
                    received += len(chunk)
    assert received == GIB
    assert rss.growth < RSS_GROWTH_LIMIT, f"gateway RSS grew {rss.growth >> 20} MiB"
    print(f"1 GiB download: {time.monotonic() - started:.1f} s, gateway RSS growth {rss.growth >> 20} MiB")
    time.sleep(0.6)  # audit lines are flushed twice a second
    audit = [json.loads(x) for x in (tmp_path / "gw.log").read_text().splitlines() if x.startswith('{"ts"')]
    sent = [a["bytes"] for a in audit if a.get("event") == "gateway.request" and a["path"] == "/api/view"]
    assert sent == [GIB]  # the body, like nginx's body_bytes_sent


async def test_one_gib_upload(gateway_proc: tuple[str, str, Path, int]) -> None:
    url, token, root, pid = gateway_proc
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)

    async def body() -> AsyncIterator[bytes]:
        yield b'--xx\r\nContent-Disposition: form-data; name="image"; filename="big.mp4"\r\n\r\n'
        for _ in range(GIB // len(block)):
            digest.update(block)
            yield block
        yield b"\r\n--xx--\r\n"

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "multipart/form-data; boundary=xx"}
    async with aiohttp.ClientSession() as s:
        with PeakRss(pid) as rss:
            async with s.post(url + "/api/upload/image", data=body(), headers=headers) as r:
                assert r.status == 200, await r.text()
                name = (await r.json())["name"]
    stored = root / "input" / name
    assert stored.stat().st_size == GIB
    check = hashlib.sha256()
    with open(stored, "rb") as fh:
        while chunk := fh.read(8 << 20):
            check.update(chunk)
    assert check.hexdigest() == digest.hexdigest()
    stored.unlink()
    assert rss.growth < RSS_GROWTH_LIMIT, f"gateway RSS grew {rss.growth >> 20} MiB"
