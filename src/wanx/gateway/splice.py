"""Zero-copy relay of a body of known length from one socket to another through a pipe (Linux splice).

Used for large downloads (/view of a video) when both sockets are plain TCP: the bytes never enter
Python, so the gateway streams at close to the speed of the upstream itself. The caller's transports
keep their file descriptors; this works on duplicates so the event loop's own registrations stay untouched.

A descriptor number is only the transport's while the transport is open: once it closes, the number can
be handed to the next connection accepted. So ``splice_to_transport`` looks both descriptors up after its
last wait and duplicates them before any other: a number is never carried across an await.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os

__all__ = ["AVAILABLE", "ClientGone", "splice_exact", "splice_to_transport", "transport_fd"]

AVAILABLE = hasattr(os, "splice")
_PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)


class ClientGone(ConnectionError):
    """The client's socket refused more bytes (it closed or reset the connection)."""


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool, timeout: float | None) -> None:
    waiter: asyncio.Future[None] = loop.create_future()
    add, remove = (loop.add_writer, loop.remove_writer) if write else (loop.add_reader, loop.remove_reader)

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    add(fd, wake)
    try:
        async with asyncio.timeout(timeout):
            await waiter
    finally:
        remove(fd)


async def splice_exact(
    src_fd: int, dst_fd: int, length: int, *, read_timeout_s: float, send_timeout_s: float | None = None
) -> None:
    """Move exactly ``length`` bytes from ``src_fd`` to ``dst_fd``.

    Raises ConnectionError when the source ends early, ClientGone when the destination goes away or takes
    no bytes for ``send_timeout_s``, TimeoutError when the source is silent for ``read_timeout_s``.
    """
    src = os.dup(src_fd)
    try:
        dst = os.dup(dst_fd)
        try:
            await _splice_dups(src, dst, length, read_timeout_s=read_timeout_s, send_timeout_s=send_timeout_s)
        finally:
            os.close(dst)
    finally:
        os.close(src)


async def _splice_dups(src: int, dst: int, length: int, *, read_timeout_s: float, send_timeout_s: float | None) -> None:
    loop = asyncio.get_running_loop()
    pipe_r, pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe_w, _F_SETPIPE_SZ, _PIPE_BYTES)
        capacity = fcntl.fcntl(pipe_w, getattr(fcntl, "F_GETPIPE_SZ", 1032))
        moved = in_pipe = 0
        while moved < length:
            src_blocked = False
            want = min(length - moved - in_pipe, capacity - in_pipe)
            if want > 0:
                try:
                    n = os.splice(src, pipe_w, want, flags=_FLAGS)
                except BlockingIOError:
                    src_blocked = True
                else:
                    if n == 0:
                        raise ConnectionError(f"the upstream closed after {moved + in_pipe} of {length} body bytes")
                    in_pipe += n
            if in_pipe:
                try:
                    m = os.splice(pipe_r, dst, in_pipe, flags=_FLAGS)
                except BlockingIOError:
                    try:
                        await _ready(loop, dst, write=True, timeout=send_timeout_s)
                    except TimeoutError:
                        raise ClientGone(f"the client took no bytes for {send_timeout_s} s") from None
                    continue
                except OSError as exc:
                    raise ClientGone(str(exc)) from exc
                in_pipe -= m
                moved += m
            elif src_blocked:
                await _ready(loop, src, write=False, timeout=read_timeout_s)
    finally:
        os.close(pipe_r)
        os.close(pipe_w)


def transport_fd(transport: asyncio.BaseTransport | None) -> int | None:
    """The descriptor to splice into, or None when the transport is not a plain socket (TLS, a pipe, closed)."""
    if not AVAILABLE or transport is None or transport.is_closing():
        return None
    if transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    return sock.fileno() if sock is not None else None


async def splice_to_transport(
    src: asyncio.BaseTransport,
    dst: asyncio.WriteTransport,
    length: int,
    *,
    read_timeout_s: float,
    send_timeout_s: float,
) -> bool:
    """``splice_exact`` from the socket under ``src`` (reading paused) into the one under ``dst`` once the
    bytes ``dst`` still holds have gone out; False (and ``dst`` closed) when the client went away first or
    meanwhile, or took no bytes for ``send_timeout_s``. Raises ConnectionError when ``src`` closed first."""
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + send_timeout_s, 0.001
    while dst.get_write_buffer_size() and not dst.is_closing():
        if loop.time() > deadline:
            dst.abort()
            return False
        await asyncio.sleep(pause)  # splice must not overtake bytes the transport still holds
        pause = min(pause * 2, 0.05)
    src_fd, dst_fd = transport_fd(src), transport_fd(dst)  # after the last wait: see the module docstring
    if dst_fd is None:
        dst.close()
        return False
    if src_fd is None:
        raise ConnectionError("the upstream closed before its body was relayed")
    try:
        await splice_exact(src_fd, dst_fd, length, read_timeout_s=read_timeout_s, send_timeout_s=send_timeout_s)
    except ClientGone:
        dst.abort()
        return False
    return True
