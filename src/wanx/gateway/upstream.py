"""A lean HTTP/1.1 keep-alive client for the proxy hot path: asyncio protocol plus httptools' C parser.

aiohttp's ClientSession costs more Python per request than the whole gateway (see docs/gateway.md,
Performance); this pool does only what a reverse proxy needs: send a head and a body, parse the
answer's head, hand the body over chunk by chunk with bounded buffering, reuse the connection.
WebSockets and the gateway's own small calls (health, /queue) keep using aiohttp.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable, Iterable
from typing import cast

import httptools

__all__ = [
    "HEAD_CODEC",
    "HOP_BY_HOP",
    "HOP_BY_HOP_BYTES",
    "UpstreamClosed",
    "UpstreamConnectError",
    "UpstreamConnection",
    "UpstreamPool",
    "UpstreamResponse",
    "request_head",
]

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers"}
    | {"transfer-encoding", "upgrade"}
)
HOP_BY_HOP_BYTES = frozenset(h.encode() for h in HOP_BY_HOP)
# Header text <-> bytes, as aiohttp's parser decodes them: every byte a client or ComfyUI sent comes out
# the other side unchanged, whichever path (the front, or the aiohttp app) carried it.
HEAD_CODEC = ("utf-8", "surrogateescape")
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close"})
_HIGH_WATER = 1 << 20  # body bytes buffered before the upstream socket is paused
_MAX_IDLE = 256


class UpstreamConnectError(OSError):
    """The upstream did not accept a connection."""


class UpstreamClosed(ConnectionError):
    """The upstream closed the connection or sent something that is not HTTP."""


class UpstreamConnection(asyncio.Protocol):
    """One upstream socket; parses one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._head: asyncio.Future[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self.paused = False
        self.headers: list[tuple[bytes, bytes]] = []
        self.passed: list[bytes] | None = []  # header lines a proxy passes on, built while parsing (None: see headers)
        self.reason_raw = b""
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.received = False
        self.error: BaseException | None = None
        self.content_length: int | None = None
        self._notify: Callable[[], None] | None = None  # the callback flavour (``start``)
        self._notify_due = False
        self._timer: asyncio.TimerHandle | None = None
        self._head_only = False
        self._small = 0
        self._informational = False
        self._chunked = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamClosed("the upstream switched protocols on a plain request"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamClosed(f"the upstream sent an unreadable answer: {exc}"))
        if self._notify_due:  # after feed_data: the callback may hand this connection back to the pool
            self._fire()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        unframed = self.head_done and self.content_length is None and not self._chunked and self.error is None
        if not self.complete and unframed and exc is None:  # a body with no length and no chunks ends with
            self.complete, self.keep_alive = True, False  # the connection (httptools has no end-of-input call)
            self._wakeup(self._wake)
        elif not self.complete:
            self._fail(UpstreamClosed("the upstream closed the connection"))
        self._wakeup(self._drain)

    def pause_writing(self) -> None:
        self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        self._wakeup(self._drain)
        self._drain = None

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request: out of step, never to be reused
            raise UpstreamClosed("the upstream sent more than one answer to a request")

    def on_status(self, reason: bytes) -> None:
        self.reason_raw += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        low = name.lower()
        if low == b"content-length":
            self.content_length = int(value) if value.strip().isdigit() else None
        elif low in HOP_BY_HOP_BYTES:
            self._chunked = self._chunked or low == b"transfer-encoding"
            if low == b"connection" and value.strip().lower() not in _PLAIN_CONNECTION:
                self.passed = None  # it names other headers to drop: the caller filters ``headers`` itself
        elif self.passed is not None:
            self.passed.append(name + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        if 100 <= self.status < 200 and self.status != 101:  # informational (103 Early Hints): the answer follows
            self._informational = True
            self.headers, self.passed, self.reason_raw, self.content_length = [], [], b"", None
            return
        self.head_done = True
        if self._notify is not None and (
            self._head_only or self.content_length is None or self.content_length > self._small
        ):
            self._notify_due = True  # a large answer, or one without a body: the caller streams it
        self._wakeup(self._head)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wakeup(self._wake)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.keep_alive = bool(self._parser.should_keep_alive())  # llhttp forgets it once the message ends
        self.complete = True
        self._notify_due = self._notify is not None
        self._wakeup(self._wake)
        self._wakeup(self._head)

    # used by the pool and the response

    def _wakeup(self, waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        for waiter in (self._head, self._wake):
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()
        if self._notify is not None:
            self._fire()

    def start(self, data: bytes, notify: Callable[[], None], timeout: float, *, head_only: bool, small: int) -> None:
        """The callback flavour of an exchange, for answers read whole: send ``data`` (a request without a
        body), then call ``notify`` once: when the whole answer is in (``complete``), when its head shows it
        is larger than ``small`` bytes, of unknown length or bodiless (``head_only``): then read it as an
        ``UpstreamResponse``; or when it failed (``error``). No task, no future: a third less work per request."""
        self._notify = notify
        self._head_only = head_only
        self._small = small
        self._timer = self._loop.call_later(timeout, self._expire_notify)
        assert self.transport is not None
        self.transport.write(data)

    def _expire_notify(self) -> None:
        if self._notify is not None:
            self._fail(TimeoutError("the upstream did not answer in time"))

    def _fire(self) -> None:
        notify, self._notify, self._notify_due = self._notify, None, False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if notify is not None:
            notify()

    def abandon(self) -> None:
        """Drop a callback exchange whose client went away: no callback, and the socket closed."""
        self._notify = None
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()

    def reset(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.headers = []
        self.passed = []
        self._chunks.clear()
        self._buffered = 0
        self.reason_raw = b""
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.received = False
        self.error = None
        self.content_length = None
        self._chunked = False
        self._head_only = False

    async def send(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamClosed("the upstream closed the connection")
        self.transport.write(data)
        if self._drain is not None:
            await self._drain

    async def _wait(self, waiter: asyncio.Future[None], timeout: float) -> None:
        """Await ``waiter`` for at most ``timeout`` seconds (a bare timer: asyncio.timeout costs more per call)."""
        timer = self._loop.call_later(timeout, self._expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()

    def _expire(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError("the upstream did not answer in time"))
        if self.transport is not None:
            self.transport.close()

    async def read_head(self, timeout: float) -> None:
        if self.error is not None:
            raise self.error
        if self.head_done:
            return
        self._head = self._loop.create_future()
        try:
            await self._wait(self._head, timeout)
        finally:
            self._head = None

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The next piece of body, or None at its end."""
        while not self._chunks:
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            self._wake = self._loop.create_future()
            try:
                await self._wait(self._wake, timeout)
            finally:
                self._wake = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self.paused and self._buffered <= _HIGH_WATER // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    def take_buffered(self) -> list[bytes]:
        chunks = list(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunks

    @property
    def status(self) -> int:
        return int(self._parser.get_status_code())

    @property
    def reason(self) -> str:
        return self.reason_raw.decode("latin-1")


class UpstreamResponse:
    """An answer whose head has arrived; read the body once, then ``release`` (always)."""

    def __init__(
        self, pool: UpstreamPool, key: tuple[str, int, bool], conn: UpstreamConnection, *, head_only: bool
    ) -> None:
        self._pool = pool
        self._key = key
        self._conn = conn
        self._head_only = head_only
        self.status = conn.status
        self.reason = conn.reason
        self.headers = conn.headers
        self.passed = conn.passed
        self.reason_raw = conn.reason_raw
        self.content_length = conn.content_length

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._head_only:
            return
        while (chunk := await self._conn.next_chunk(self._pool.read_timeout_s)) is not None:
            yield chunk

    def detach(self) -> tuple[list[bytes], asyncio.Transport] | None:
        """Stop parsing: the body bytes already received, and the transport (reading paused) whose socket
        holds the rest (for ``splice``); None for TLS. The connection is closed on ``release``."""
        conn = self._conn
        if self._key[2] or conn.transport is None or conn.complete or conn.error is not None:
            return None
        buffered = conn.take_buffered()
        conn.transport.pause_reading()  # after take_buffered, which resumes a connection paused at high water
        conn.paused = True
        return buffered, conn.transport

    @property
    def complete(self) -> bool:
        """The whole answer has arrived (``take_body`` returns it)."""
        return self._conn.complete

    def take_body(self) -> bytes:
        """The body of a ``complete`` answer."""
        return b"".join(self._conn.take_buffered())

    async def read(self) -> bytes:
        if self.complete and not self._head_only:  # a small answer that arrived with its head
            return self.take_body()
        return b"".join([chunk async for chunk in self.iter_chunks()])

    def release(self) -> None:
        self._pool.release(self._key, self._conn, head_only=self._head_only)


def request_head(method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """The head of a request; ``headers`` carry its framing, if it has a body."""
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(*HEAD_CODEC)


class UpstreamPool:
    """Idle keep-alive connections per (host, port, TLS); no limit on connections in use."""

    def __init__(
        self, *, connect_timeout_s: float = 5.0, read_timeout_s: float = 300.0, send_timeout_s: float = 60.0
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.send_timeout_s = send_timeout_s  # for the callers: how long a client may take no bytes of an answer
        self._idle: dict[tuple[str, int, bool], list[UpstreamConnection]] = {}

    def release(self, key: tuple[str, int, bool], conn: UpstreamConnection, *, head_only: bool = False) -> None:
        """Back to the idle list when the answer was read to its end and both sides keep the connection;
        closed otherwise, and when its reading is paused (the next answer would never be read)."""
        reusable = conn.complete and conn.keep_alive and conn.error is None and not conn.paused
        if reusable and not conn.closed and not head_only:
            self._put(key, conn)
        elif conn.transport is not None:
            conn.transport.close()

    def _put(self, key: tuple[str, int, bool], conn: UpstreamConnection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= _MAX_IDLE:
            assert conn.transport is not None
            conn.transport.close()
            return
        conn.reset()
        idle.append(conn)

    def take(self, key: tuple[str, int, bool]) -> UpstreamConnection | None:
        """An idle connection for ``key`` (for ``UpstreamConnection.start``), or None: then use ``request``."""
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.received:
                return conn
            if conn.transport is not None:  # closed, or it sent bytes nobody asked for: never reuse it
                conn.transport.close()
        return None

    async def _connect(self, key: tuple[str, int, bool]) -> UpstreamConnection:
        host, port, tls = key
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(UpstreamConnection, host, port, ssl=tls or None)
        except OSError as exc:
            raise UpstreamConnectError(exc.errno, f"cannot connect to {host}:{port}: {exc.strerror}") from exc
        return conn

    async def request(
        self,
        host: str,
        port: int,
        tls: bool,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | AsyncIterator[bytes] | None,
    ) -> UpstreamResponse:
        """Send the request and wait for the answer's head. ``headers`` must not carry framing for ``body``
        when it is bytes (Content-Length is set here); a streamed body keeps the client's Content-Length,
        or is sent chunked without one."""
        key = (host, port, tls)
        headers = list(headers)
        chunked = False
        if isinstance(body, bytes):
            headers.append(("Content-Length", str(len(body))))
        elif body is not None and not any(name.lower() == "content-length" for name, _ in headers):
            headers.append(("Transfer-Encoding", "chunked"))
            chunked = True
        head = request_head(method, target, headers)
        replayable = not isinstance(body, AsyncIterator)
        conn = self.take(key)
        if conn is not None and replayable:
            try:
                return await self._exchange(key, conn, method, head, body, chunked)
            except UpstreamClosed:
                if conn.received:
                    raise
                conn = None  # the idle connection had been closed by the upstream: one fresh try
        return await self._exchange(key, conn or await self._connect(key), method, head, body, chunked)

    async def _exchange(
        self,
        key: tuple[str, int, bool],
        conn: UpstreamConnection,
        method: str,
        head: bytes,
        body: bytes | AsyncIterator[bytes] | None,
        chunked: bool,
    ) -> UpstreamResponse:
        try:
            if isinstance(body, bytes) and len(body) <= 65536:
                await conn.send(head + body)
            else:
                await conn.send(head)
                if isinstance(body, bytes):
                    await conn.send(body)
                elif body is not None:
                    async for piece in body:
                        if piece:
                            await conn.send(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
                    if chunked:
                        await conn.send(b"0\r\n\r\n")
            await conn.read_head(self.read_timeout_s)
        except BaseException:
            if conn.transport is not None:
                conn.transport.close()
            raise
        return UpstreamResponse(self, key, conn, head_only=method == "HEAD")

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                if conn.transport is not None:
                    conn.transport.close()
        self._idle.clear()
