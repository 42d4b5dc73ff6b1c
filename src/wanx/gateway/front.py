"""The gateway's listening socket: a lean HTTP/1.1 front for plain reads, the aiohttp app for the rest.

Every connection starts here. Each request head is parsed with httptools' C parser; the requests
``fastpath.admit`` accepts (authenticated GET/HEAD that go straight to ComfyUI: the web page's
assets, /object_info, /system_stats, ...) are forwarded on the same upstream pool as the aiohttp app
uses, with the same headers, metrics and audit line, at about a third of aiohttp's server cost. The
first request it does not accept hands the connection, with every byte read so far, to the aiohttp
app's own protocol for the rest of the connection's life (docs/gateway.md, Performance).
``WANX_GATEWAY_FAST_PATH=0`` serves everything with aiohttp alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO, cast

import httptools
from aiohttp import web
from aiohttp.http_parser import SINGLETON_HEADERS
from aiohttp.web_protocol import RequestHandler
from yarl import URL

from wanx.gateway import splice
from wanx.gateway.app import AUDIT_KEY, EXTRA_KEY, ExtraRoute
from wanx.gateway.audit import fixed_fields, format_fast
from wanx.gateway.auth import Principal
from wanx.gateway.fastpath import FastContext, Head, LastCaller, Plan, admit, has_body, response_head
from wanx.gateway.paths import CanonicalPath
from wanx.gateway.proxy import SMALL_BODY, SPLICE_MIN, ProxyResult, response_header_block, upstream_failure
from wanx.gateway.state import POOL_KEY, STATE_KEY, GatewayState
from wanx.gateway.upstream import (
    HEAD_CODEC,
    UpstreamClosed,
    UpstreamConnection,
    UpstreamPool,
    UpstreamResponse,
    request_head,
)

__all__ = ["GatewayServer", "run_gateway"]

log = logging.getLogger(__name__)

_MAX_PIPELINED = 64 * 1024  # pipelined bytes buffered while an answer is on its way, before reading pauses
_FAST_HEAD = 16 * 1024  # longer heads go to aiohttp (its max_field_size; max_line_size is 8190)
_MAX_URL = 8000  # aiohttp's max_line_size (8190) less the method and version
_MAX_HEADERS = 128  # aiohttp's max_headers
_KEEPALIVE_S = 75.0  # aiohttp's default for idle keep-alive connections


class _Front:
    """What all connections share: the app's state, the upstream, the aiohttp protocol factory."""

    def __init__(self, app: web.Application, handler_factory: Callable[[], asyncio.Protocol]) -> None:
        self.state: GatewayState = app[STATE_KEY]
        settings = self.state.settings
        self.base: URL = settings.upstream_url
        extra_routes: tuple[ExtraRoute, ...] = app[EXTRA_KEY]
        self.ctx = FastContext.of(
            self.state.tokens,
            self.state.policy,
            extra_routes,
            trust_forwarded_proto=settings.trust_forwarded_proto,
            base_path=self.base.raw_path,
        )
        self.pool: UpstreamPool = app[POOL_KEY]
        self.upstream = (self.base.raw_host or "", self.base.port or 80, self.base.scheme == "https")
        self.audit_stream: TextIO | None = app[AUDIT_KEY].stream
        self.handler_factory = handler_factory
        self.enabled = settings.fast_path
        self.connections: set[FrontProtocol] = set()


class FrontProtocol(asyncio.Protocol):
    """One client connection while the front serves it (until it hands it to aiohttp)."""

    def __init__(self, front: _Front) -> None:
        self._front = front
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self._peer = ""
        self._plan: Plan | None = None  # the request being answered
        self._started = 0.0
        self._conn: UpstreamConnection | None = None  # its upstream exchange, while it runs on callbacks
        self._task: asyncio.Task[None] | None = None  # or its task (connecting, streaming)
        self._drain: asyncio.Future[None] | None = None
        self._next_on_resume = False
        self._caller = LastCaller()
        self._audit_key: tuple[Principal, str, CanonicalPath] | None = None
        self._audit_fixed = ""
        self._eof = False
        self._reading_paused = False
        self._last_active = self._loop.time()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._first: dict[str, str] = {}
        self._complete = False
        self._keep_alive = False
        self._refused = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple | list) and peer else ""
        if not self._front.enabled:
            self._hand_off()
            return
        self._front.connections.add(self)
        self._idle_timer = self._loop.call_at(self._last_active + _KEEPALIVE_S, self._check_idle)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._plan is None and not self._next_on_resume:
            self._next()
        elif len(self._buf) > _MAX_PIPELINED and self.transport is not None and not self._reading_paused:
            self._reading_paused = True  # a client pipelining faster than it reads answers
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        return self._plan is not None  # keep the socket open to send the answer in progress

    def connection_lost(self, exc: Exception | None) -> None:
        self._front.connections.discard(self)
        self.transport = None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._task is not None and _started(self._task):
            self._task.cancel()  # one not started yet must not be: it would skip its clean-up; it ends by itself
        if self._conn is not None and self._plan is not None:  # gone while its answer was on the way
            self._conn.abandon()
            self._conn = None
            self._record(self._plan, 499, 0)
        self.resume_writing()  # wakes a writer, which then finds the transport gone

    def shut(self) -> asyncio.Task[None] | None:
        """Drop the connection now (gateway shutdown); the task still answering on it, if any."""
        if self.transport is not None:
            self.transport.abort()  # close() would wait for the client to take what is buffered
        return self._task

    def pause_writing(self) -> None:
        self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None
        if self._next_on_resume and self.transport is not None:
            self._next_on_resume = False
            self._next()

    # httptools callbacks

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        text, value_text = name.decode(*HEAD_CODEC), value.decode(*HEAD_CODEC)
        self._headers.append((text, value_text))
        low = text.lower()
        if low not in self._first:
            self._first[low] = value_text
        elif low in SINGLETON_HEADERS:
            self._refused = True  # aiohttp answers 400 to a repeated Host, User-Agent, ...

    def on_headers_complete(self) -> None:
        self._keep_alive = bool(self._parser.should_keep_alive())

    def on_message_complete(self) -> None:
        self._complete = True

    # the request loop

    def _next(self) -> None:
        """Take the next request head from the buffer: answer it here, or hand the connection over."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > _FAST_HEAD or b"\n\n" in buf:
                self._hand_off()
            elif self._eof and self.transport is not None:
                self.transport.close()  # the client stopped sending in the middle of a head
            return
        size = end + 4
        if size > _FAST_HEAD:  # aiohttp's own limits decide about long heads (400, 431)
            self._hand_off()
            return
        self._url, self._headers, self._first, self._complete, self._refused = b"", [], {}, False, False
        try:
            self._parser.feed_data(bytes(buf[:size]))
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):  # malformed, or an upgrade: aiohttp's turn
            self._hand_off()
            return
        if not self._complete or self._parser.get_http_version() != "1.1":  # a body follows, or HTTP/1.0
            self._hand_off()
            return
        if self._refused or len(self._url) > _MAX_URL or len(self._headers) > _MAX_HEADERS:
            self._hand_off()  # what aiohttp's parser refuses, it refuses (400) for both
            return
        head = Head(
            method=self._parser.get_method().decode("ascii"),
            target=self._url.decode("latin-1"),
            headers=self._headers,
            keep_alive=self._keep_alive,
            first=self._first,
        )
        plan = admit(self._front.ctx, head, self._peer, self._caller)
        if plan is None:
            self._hand_off()
            return
        del buf[:size]
        self._front.state.metrics.front["fast"] += 1
        self._start(plan)

    def _hand_off(self) -> None:
        """Give the connection, with the bytes read and not yet answered, to the aiohttp app."""
        transport = self.transport
        if transport is None:
            return
        self._front.connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._front.state.metrics.front["handed_off"] += 1
        handler = self._front.handler_factory()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        data, self._buf = bytes(self._buf), bytearray()
        if data:
            handler.data_received(data)
        if self._eof and isinstance(handler, RequestHandler):
            handler.close()  # the client sends no more: answer what came, then close (aiohttp ignores EOF)
        if self._reading_paused:
            transport.resume_reading()
        self.transport = None

    def _check_idle(self) -> None:
        """Close a keep-alive connection that has not sent a whole request head for a while."""
        if self.transport is None:
            return
        due = self._last_active + _KEEPALIVE_S
        if self._plan is None and self._loop.time() >= due:
            self.transport.close()
            return
        self._idle_timer = self._loop.call_at(max(due, self._loop.time() + 1.0), self._check_idle)

    def _finished(self) -> None:
        """The answer is out: next request (pipelined), or wait for one, or close."""
        plan, self._plan, self._task = self._plan, None, None
        self._last_active = self._loop.time()
        transport = self.transport
        if transport is None or plan is None:
            return
        if not plan.keep_alive or transport.is_closing():
            transport.close()
            return
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        if self._drain is not None:  # the client is not reading its answers: wait before taking more
            self._next_on_resume = True
        elif self._buf:
            self._next()  # a pipelined request
        elif self._eof:
            transport.close()

    def _record(self, plan: Plan, status: int, bytes_out: int) -> None:
        """Metrics and the audit line, as the aiohttp app writes them."""
        front = self._front
        elapsed = time.perf_counter() - self._started
        front.state.metrics.observe(plan.label, plan.method, status, elapsed)
        if front.state.settings.audit:
            key = (plan.principal, plan.method, plan.path)
            if key != self._audit_key:
                name, role = plan.principal.name, plan.principal.role.value
                self._audit_key, self._audit_fixed = key, fixed_fields(name, role, plan.method, plan.path.forward)
            line = format_fast(self._audit_fixed, status, bytes_out, round(elapsed * 1000, 2), self._peer)
            (front.audit_stream or sys.stdout).write(line)

    # one request

    def _start(self, plan: Plan) -> None:
        """Forward ``plan`` on an idle upstream connection, on callbacks; without one, in a task (connect)."""
        front = self._front
        self._plan, self._started = plan, time.perf_counter()
        conn = front.pool.take(front.upstream)
        if conn is None:
            self._task = self._loop.create_task(self._serve(plan))
            return
        self._conn = conn
        head = request_head(plan.method, plan.target, plan.headers)
        conn.start(
            head, self._on_upstream, front.pool.read_timeout_s, head_only=plan.method == "HEAD", small=SMALL_BODY
        )

    def _on_upstream(self) -> None:
        """The callback exchange is over (answer in, or large, or failed): answer now, or go on in a task."""
        conn, plan, front = self._conn, self._plan, self._front
        self._conn = None
        if conn is None or plan is None:
            return
        if isinstance(conn.error, UpstreamClosed) and not conn.received:  # an idle one the upstream had dropped
            self._task = self._loop.create_task(self._serve(plan))  # which connects afresh
            return
        if conn.error is not None and not conn.complete:  # (a whole answer with junk after it still counts)
            status = self._answer_failure(plan, conn.error)
            self._record(plan, status, 0)
            self._finished()
            return
        upstream = UpstreamResponse(front.pool, front.upstream, conn, head_only=plan.method == "HEAD")
        result = ProxyResult()
        try:
            done = self._answer_whole(plan, upstream, result)
        except ConnectionError:
            done = True
        if not done:
            self._task = self._loop.create_task(self._stream(plan, upstream))
            return
        upstream.release()
        self._record(plan, upstream.status, result.bytes_out)
        self._finished()

    async def _serve(self, plan: Plan) -> None:
        """The task flavour: connect (or retry), then answer."""
        result = ProxyResult()
        status = 499  # the client went away before this task started
        try:
            if self.transport is not None:
                status = await self._proxy(plan, result)
        except asyncio.CancelledError:
            status = result.upstream_status or 499  # the client went away
        except (TimeoutError, ConnectionError, OSError):
            status = result.upstream_status or 502
            if self.transport is not None:
                self.transport.abort()  # the head is gone: dropping the connection is the only signal left
        finally:
            self._record(plan, status, result.bytes_out)
            self._finished()

    async def _stream(self, plan: Plan, upstream: UpstreamResponse) -> None:
        """Answer a large or unframed body that the callback exchange could not take whole."""
        result = ProxyResult()
        try:
            if self.transport is not None:  # else the client went away before this task started
                await self._relay(plan, upstream, result)
        except asyncio.CancelledError:
            pass  # the client went away
        except (TimeoutError, ConnectionError, OSError):
            if self.transport is not None:
                self.transport.abort()
        finally:
            upstream.release()
            self._record(plan, upstream.status, result.bytes_out)
            self._finished()

    async def _proxy(self, plan: Plan, result: ProxyResult) -> int:
        """Forward ``plan`` and send the answer; return the status the client got."""
        front = self._front
        host, port, tls = front.upstream
        try:
            upstream = await front.pool.request(host, port, tls, plan.method, plan.target, plan.headers, None)
        except (TimeoutError, ConnectionError, OSError) as exc:
            return self._answer_failure(plan, exc)
        try:
            result.upstream_status = upstream.status
            await self._relay(plan, upstream, result)
            return upstream.status
        finally:
            upstream.release()

    def _answer_failure(self, plan: Plan, exc: BaseException) -> int:
        front = self._front
        log.warning(
            "upstream request failed",
            extra={"event": "gateway.upstream_error", "upstream": str(front.base), "error": type(exc).__name__},
        )
        answer = upstream_failure(front.base, exc)
        body = answer.body if isinstance(answer.body, bytes) else b""
        lines = "".join(f"{name}: {value}\r\n" for name, value in answer.headers.items()).encode("latin-1")
        head = response_head(
            answer.status,
            answer.reason.encode("latin-1"),
            lines,
            length=len(body),
            chunked=False,
            keep_alive=plan.keep_alive,
        )
        with contextlib.suppress(ConnectionError):
            self._write(head + body)
        return answer.status

    def _answer_whole(self, plan: Plan, upstream: UpstreamResponse, result: ProxyResult) -> bool:
        """Answers that need no waiting: bodiless ones, and small bodies already in; False for the rest."""
        status, length = upstream.status, upstream.content_length
        if plan.method == "HEAD" or not has_body(status):
            lines = response_header_block(upstream)
            reason = upstream.reason_raw
            self._write(response_head(status, reason, lines, length=length, chunked=False, keep_alive=plan.keep_alive))
            return True
        if upstream.complete and length is not None and length <= SMALL_BODY:
            self._write_small(plan, upstream, upstream.take_body(), result)
            return True
        return False

    def _write_small(self, plan: Plan, upstream: UpstreamResponse, payload: bytes, result: ProxyResult) -> None:
        result.bytes_out = len(payload)
        lines = response_header_block(upstream)
        head = response_head(
            upstream.status, upstream.reason_raw, lines, length=len(payload), chunked=False, keep_alive=plan.keep_alive
        )
        self._write(head + payload)

    async def _relay(self, plan: Plan, upstream: UpstreamResponse, result: ProxyResult) -> None:
        if self._answer_whole(plan, upstream, result):
            return
        length = upstream.content_length
        if length is not None and length <= SMALL_BODY:
            self._write_small(plan, upstream, await upstream.read(), result)
            return
        head = response_head(
            upstream.status,
            upstream.reason_raw,
            response_header_block(upstream),
            length=length,
            chunked=length is None,
            keep_alive=plan.keep_alive,
        )
        if length is not None and length >= SPLICE_MIN and await self._splice(head, upstream, length, result):
            return
        self._write(head)
        async for chunk in upstream.iter_chunks():
            result.bytes_out += len(chunk)
            self._write(chunk if length is not None else b"%x\r\n%b\r\n" % (len(chunk), chunk))
            if self._drain is not None:
                async with asyncio.timeout(self._front.pool.send_timeout_s):  # a client that takes nothing
                    await self._drain
        if length is None:
            self._write(b"0\r\n\r\n")

    async def _splice(self, head: bytes, upstream: UpstreamResponse, length: int, result: ProxyResult) -> bool:
        """Send a large body socket to socket (splice.py); False when that cannot be done here."""
        transport = self.transport
        if transport is None or splice.transport_fd(transport) is None:
            return False
        detached = upstream.detach()
        if detached is None:
            return False
        buffered, source = detached
        result.bytes_out = sum(len(chunk) for chunk in buffered)
        transport.write(head + b"".join(buffered))
        rest = length - result.bytes_out
        pool = self._front.pool
        if await splice.splice_to_transport(
            source, transport, rest, read_timeout_s=pool.read_timeout_s, send_timeout_s=pool.send_timeout_s
        ):
            result.bytes_out = length
        return True

    def _write(self, data: bytes) -> None:
        if self.transport is None:
            raise ConnectionResetError("the client closed the connection")
        self.transport.write(data)


def _started(task: asyncio.Task[None]) -> bool:
    """Whether ``task``'s coroutine has begun (cancelling one that has not skips its ``finally`` blocks)."""
    coro = task.get_coro()
    return not (inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED)


@dataclass
class GatewayServer:
    """The gateway listening on a socket: the front, and behind it the aiohttp app's runner."""

    runner: web.AppRunner
    server: asyncio.AbstractServer
    front: _Front

    @classmethod
    async def start(cls, app: web.Application, host: str, port: int) -> GatewayServer:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()  # runs the app's start-up: the upstream pool, the job service
        assert runner.server is not None
        front = _Front(app, runner.server)
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(lambda: FrontProtocol(front), host, port, reuse_address=True)
        except BaseException:
            await runner.cleanup()
            raise
        return cls(runner, server, front)

    async def close(self) -> None:
        """Stop listening, drop the front's connections (answers still on their way are cut, as they would
        be when the process exits), let their tasks end, then shut the aiohttp app down (its cleanup)."""
        self.server.close()
        tasks = [task for conn in list(self.front.connections) if (task := conn.shut()) is not None]
        if tasks:  # their clean-up releases upstream connections: let it run before the pool closes
            await asyncio.wait(tasks, timeout=5)
        await self.runner.cleanup()


def run_gateway(app: web.Application, host: str, port: int, *, loop: asyncio.AbstractEventLoop) -> None:
    """Serve ``app`` on ``host:port`` until SIGINT or SIGTERM."""

    async def main() -> None:
        gateway = await GatewayServer.start(app, host, port)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await gateway.close()

    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
