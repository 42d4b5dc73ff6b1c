"""The upstream pool takes back only connections that are at a clean message boundary and still reading."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from wanx.gateway.upstream import UpstreamConnection, UpstreamPool

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
Key = tuple[str, int, bool]


@contextlib.asynccontextmanager
async def _answered(answer: bytes) -> AsyncIterator[tuple[UpstreamPool, UpstreamConnection, Key]]:
    """A pool, and its connection to a raw server on 127.0.0.1 that has sent ``answer`` to one GET."""

    handlers: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            await reader.read()  # until the gateway closes its side
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    pool = UpstreamPool(read_timeout_s=5)
    key = ("127.0.0.1", server.sockets[0].getsockname()[1], False)
    try:
        response = await pool.request(*key, "GET", "/x", [("Host", "x")], None)
        assert await response.read() == b"ok"
        yield pool, response._conn, key
    finally:
        pool.close()
        server.close()
        await asyncio.wait_for(asyncio.gather(*handlers), 5)  # each ends once the pool's side is closed
        await server.wait_closed()


async def test_a_whole_answer_goes_back_to_the_pool() -> None:
    async with _answered(ANSWER) as (pool, conn, key):
        pool.release(key, conn)
        assert pool.take(key) is conn
        pool.release(key, conn)


async def test_a_paused_connection_is_closed_not_pooled() -> None:
    """Complete, but reading paused (its client left while the buffer was past high water): the next answer
    on it would never be read."""
    async with _answered(ANSWER) as (pool, conn, key):
        assert conn.transport is not None
        conn.transport.pause_reading()
        conn.paused = True
        pool.release(key, conn)
        assert pool.take(key) is None
        assert conn.transport is None or conn.transport.is_closing()


async def test_a_connection_with_junk_after_the_answer_is_not_pooled() -> None:
    async with _answered(ANSWER + ANSWER) as (pool, conn, key):
        pool.release(key, conn)
        assert pool.take(key) is None
