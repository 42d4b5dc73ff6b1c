"""A lean HTTP/1.1 keep-alive client for the proxy hot path: asyncio protocol plus httptools' C parser.

aiohttp's ClientSession costs more Python per request than the whole gateway (see docs/gateway.md,
Performance); this pool does only what a reverse proxy needs: send a head and a body, parse the
answer's head, hand the body over chunk by chunk with bounded buffering, reuse the connection.
WebSockets and the gateway's own small calls (health, /queue) keep using aiohttp.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Iterable
from typing import cast

import httptools

__all__ = ["UpstreamClosed", "UpstreamConnectError", "UpstreamPool", "UpstreamResponse"]

_HIGH_WATER = 1 << 20  # body bytes buffered before the upstream socket is paused
_MAX_IDLE = 256


class UpstreamConnectError(OSError):
    """The upstream did not accept a connection."""


class UpstreamClosed(ConnectionError):
    """The upstream closed the connection or sent something that is not HTTP."""


class _Connection(asyncio.Protocol):
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
        self._paused = False
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = ""
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.received = False
        self.error: BaseException | None = None

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

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail(UpstreamClosed("the upstream closed the connection"))
        self._wakeup(self._drain)

    def pause_writing(self) -> None:
        self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        self._wakeup(self._drain)
        self._drain = None

    # httptools callbacks

    def on_status(self, reason: bytes) -> None:
        self.reason = reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.head_done = True
        self._wakeup(self._head)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wakeup(self._wake)

    def on_message_complete(self) -> None:
        self.keep_alive = bool(self._parser.should_keep_alive())  # llhttp forgets it once the message ends
        self.complete = True
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

    def reset(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.headers = []
        self._chunks.clear()
        self._buffered = 0
        self.reason = ""
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.received = False
        self.error = None

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
        if self._paused and self._buffered <= _HIGH_WATER // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    def take_buffered(self) -> list[bytes]:
        chunks = list(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunks

    @property
    def status(self) -> int:
        return int(self._parser.get_status_code())


class UpstreamResponse:
    """An answer whose head has arrived; read the body once, then ``release`` (always)."""

    def __init__(self, pool: UpstreamPool, key: tuple[str, int, bool], conn: _Connection, *, head_only: bool) -> None:
        self._pool = pool
        self._key = key
        self._conn = conn
        self._head_only = head_only
        self.status = conn.status
        self.reason = conn.reason
        self.headers = conn.headers
        self.content_length: int | None = None
        for name, value in conn.headers:
            if name.lower() == b"content-length" and value.strip().isdigit():
                self.content_length = int(value)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._head_only:
            return
        while (chunk := await self._conn.next_chunk(self._pool.read_timeout_s)) is not None:
            yield chunk

    def detach(self) -> tuple[list[bytes], int] | None:
        """Stop parsing: the body bytes already received, and the socket's descriptor to read the rest from
        (``splice``); None for TLS. The connection is closed on ``release``."""
        conn = self._conn
        if self._key[2] or conn.transport is None or conn.complete or conn.error is not None:
            return None
        sock = conn.transport.get_extra_info("socket")
        if sock is None:
            return None
        buffered = conn.take_buffered()
        conn.transport.pause_reading()  # after take_buffered, which resumes a connection paused at high water
        return buffered, sock.fileno()

    async def read(self) -> bytes:
        conn = self._conn
        if conn.complete and not self._head_only:  # a small answer that arrived with its head
            return b"".join(conn.take_buffered())
        return b"".join([chunk async for chunk in self.iter_chunks()])

    def release(self) -> None:
        conn = self._conn
        reusable = conn.complete and conn.keep_alive and not conn.closed and not self._head_only
        if reusable:
            self._pool._put(self._key, conn)
        elif conn.transport is not None:
            conn.transport.close()


class UpstreamPool:
    """Idle keep-alive connections per (host, port, TLS); no limit on connections in use."""

    def __init__(self, *, connect_timeout_s: float = 5.0, read_timeout_s: float = 300.0) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}

    def _put(self, key: tuple[str, int, bool], conn: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= _MAX_IDLE:
            assert conn.transport is not None
            conn.transport.close()
            return
        conn.reset()
        idle.append(conn)

    def _take(self, key: tuple[str, int, bool]) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _connect(self, key: tuple[str, int, bool]) -> _Connection:
        host, port, tls = key
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(_Connection, host, port, ssl=tls or None)
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
        lines = [f"{method} {target} HTTP/1.1"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        chunked = False
        if isinstance(body, bytes):
            lines.append(f"Content-Length: {len(body)}")
        elif body is not None and not any(name.lower() == "content-length" for name, _ in headers):
            lines.append("Transfer-Encoding: chunked")
            chunked = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        replayable = not isinstance(body, AsyncIterator)
        conn = self._take(key)
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
        conn: _Connection,
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
