"""Real servers on 127.0.0.1 for tests: an aiohttp app in a thread, or a subprocess that serves HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path

from aiohttp import web

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def run_app(app_factory: Callable[[], web.Application], *, port: int | None = None) -> Iterator[str]:
    """Serve the app built by ``app_factory`` on its own event loop in a thread; yield its base URL."""

    async def start(port: int) -> Callable[[], Awaitable[None]]:
        runner = web.AppRunner(app_factory(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner.cleanup

    with serve_in_thread(start, port=port) as url:
        yield url


@contextlib.contextmanager
def run_gateway_app(app_factory: Callable[[], web.Application], *, port: int | None = None) -> Iterator[str]:
    """Serve a gateway app as ``wanx gateway`` does (the lean front, then aiohttp, on uvloop), in a thread."""
    import uvloop

    from wanx.gateway.front import GatewayServer

    async def start(port: int) -> Callable[[], Awaitable[None]]:
        gateway = await GatewayServer.start(app_factory(), "127.0.0.1", port)
        return gateway.close

    with serve_in_thread(start, port=port, loop=uvloop.new_event_loop()) as url:
        yield url


@contextlib.contextmanager
def serve_in_thread(
    start: Callable[[int], Awaitable[Callable[[], Awaitable[None]]]],
    *,
    port: int | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Iterator[str]:
    """Run ``start(port)`` on ``loop`` (a new one by default) in a thread, yield the base URL, then await
    what it returned."""
    port = port or free_port()
    loop = loop or asyncio.new_event_loop()
    started = threading.Event()
    runner_box: list[Callable[[], Awaitable[None]]] = []

    async def start_and_keep() -> None:
        runner_box.append(await start(port))

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start_and_keep())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("test server did not start within 10 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner_box[0](), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def wait_http(url: str, *, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers any HTTP status; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


class Process:
    """A server subprocess that can be killed and started again with the same command."""

    def __init__(
        self, argv: Sequence[str], *, ready_url: str, env: Mapping[str, str] | None = None, log: Path | None = None
    ) -> None:
        self.argv = list(argv)
        self.ready_url = ready_url
        self.env = {**os.environ, **(env or {})}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 30.0) -> None:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        if self.log:
            out.close()  # the child holds its own descriptor
        wait_http(self.ready_url, timeout=timeout, proc=self.proc)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


@contextlib.contextmanager
def run_process(
    argv: Sequence[str],
    *,
    ready_url: str,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[Process]:
    """Start a server subprocess, wait until ``ready_url`` answers, and stop it on exit."""
    process = Process(argv, ready_url=ready_url, env=env, log=log)
    process.start(timeout=timeout)
    try:
        yield process
    finally:
        process.kill()


PYTHON = sys.executable
