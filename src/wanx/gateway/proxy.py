"""Streaming reverse proxy: HTTP bodies and WebSocket frames pass through without being buffered.

Both entry points take the upstream base URL per call so one gateway can front several ComfyUIs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from wanx.gateway import splice
from wanx.gateway.auth import COOKIE_NAME
from wanx.gateway.responses import error_response
from wanx.gateway.upstream import (
    HEAD_CODEC,
    HOP_BY_HOP,
    HOP_BY_HOP_BYTES,
    UpstreamConnectError,
    UpstreamPool,
    UpstreamResponse,
)

__all__ = [
    "STREAMED_KEY",
    "BodyTooLarge",
    "ProxyResult",
    "forward_headers",
    "new_upstream_session",
    "proxy_http",
    "relay_download",
    "relay_websocket",
    "response_header_block",
    "response_header_items",
    "upstream_failure",
    "upstream_header_items",
]

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
CHUNK_OUT = 1 << 20
SMALL_BODY = 256 * 1024  # answers this small are read whole and sent in one write
SPLICE_MIN = 4 << 20  # answers this large go socket to socket (splice.py)
_SESSION = COOKIE_NAME.lower()
_NOT_FORWARDED = HOP_BY_HOP | {"authorization", "cookie", "host", "origin", "x-forwarded-for", "x-forwarded-host"}
_WS_HANDSHAKE = ("sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept")


class BodyTooLarge(Exception):
    """The request body went past the limit while it was being streamed."""


@dataclass(slots=True)
class ProxyResult:
    """What the audit line and metrics need to know about a proxied exchange."""

    bytes_out: int = 0
    bytes_in: int = 0
    upstream_status: int | None = None
    too_large: bool = False


# the body bytes of a streamed answer as far as they went (aiohttp counts only whole answers, and not what
# was spliced), for the audit line
STREAMED_KEY = web.RequestKey("wanx_streamed", ProxyResult)


def new_upstream_session(*, connect_timeout_s: float = 5.0, read_timeout_s: float = 300.0) -> aiohttp.ClientSession:
    """One session per app: keep-alive pool, bodies passed through compressed, no cookie jar."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
        read_bufsize=CHUNK,
    )


def upstream_header_items(
    headers: Iterable[tuple[str, str]], *, host: str, peer: str, proto: str, drop: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """Request headers for upstream: no hop-by-hop, no credentials, the client's Host, a matching Origin;
    none named in ``drop`` (lower case) either.

    The one rule for both of the gateway's servers (aiohttp's and the lean front in front.py).
    """
    lowered = [(name.lower(), name, value) for name, value in headers]
    listed = {h.strip().lower() for low, _, value in lowered if low == "connection" for h in value.split(",")}
    out: list[tuple[str, str]] = []
    cookies: list[str] = []
    origin = False
    previous: str | None = None
    for low, name, value in lowered:
        if low in _NOT_FORWARDED or low in drop or low in listed or low.startswith(_WS_HANDSHAKE):
            if low == "cookie":
                cookies.append(value)
            elif low == "origin":
                origin = True
            elif low == "x-forwarded-for" and previous is None:
                previous = value
            continue
        out.append((name, value))
    out.append(("Host", host))
    # ComfyUI answers 403 when a loopback Host meets a different Origin; the gateway has already
    # checked Origin itself (cookie requests), so it forwards one consistent with Host.
    if origin:
        out.append(("Origin", f"{proto}://{host}"))
    # every pair that names the session cookie in any spelling goes, whatever a parser would make of it
    kept = [c.strip() for value in cookies for c in value.split(";") if c.strip() and _SESSION not in c.lower()]
    if kept:
        out.append(("Cookie", "; ".join(kept)))
    out.append(("X-Forwarded-For", f"{previous}, {peer}" if previous else peer))
    out.append(("X-Forwarded-Proto", proto))
    out.append(("X-Forwarded-Host", host))
    return out


def forward_headers(request: web.Request, *, proto: str) -> CIMultiDict[str]:
    """``upstream_header_items`` for an aiohttp request, as the multidict the proxy functions take."""
    host = request.headers.get("Host") or request.host
    return CIMultiDict(
        upstream_header_items(request.headers.items(), host=host, peer=request.remote or "", proto=proto)
    )


async def _stream_body(request: web.Request, limit: int | None, result: ProxyResult) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK):
        result.bytes_in += len(chunk)
        if limit is not None and result.bytes_in > limit:
            result.too_large = True  # aiohttp wraps the exception; the flag survives
            raise BodyTooLarge
        yield chunk


def upstream_failure(base: URL, exc: BaseException) -> web.Response:
    """The answer for a client whose request could not be passed on (503 refused, 504 silent, 502 broken)."""
    if isinstance(exc, UpstreamConnectError | aiohttp.ClientConnectorError):
        return error_response(
            503,
            "upstream_unavailable",
            f"ComfyUI at {base} is not accepting connections (it may be starting or restarting); retry shortly",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, asyncio.TimeoutError):
        return error_response(504, "upstream_timeout", f"ComfyUI at {base} did not answer in time; try again")
    return error_response(502, "upstream_failed", f"ComfyUI at {base} closed the connection unexpectedly; retry")


async def proxy_http(
    request: web.Request,
    pool: UpstreamPool,
    base: URL,
    target: str,
    *,
    headers: CIMultiDict[str],
    body: bytes | None = None,
    body_limit: int | None = None,
    result: ProxyResult | None = None,
    on_body: Callable[[bytes], None] | None = None,
) -> web.StreamResponse:
    """Send ``request`` to ``base`` + ``target`` (encoded path and query) and stream the answer back.

    ``body`` replaces the request body when the caller has already read it (the /prompt check).
    ``on_body`` asks for the response to be read whole (small JSON answers only) and passed to it.
    """
    result = result if result is not None else ProxyResult()
    path = base.raw_path.rstrip("/") + target
    data: bytes | AsyncIterator[bytes] | None = body
    if body is None and request.body_exists:
        data = _stream_body(request, body_limit, result)
    elif body is not None:
        result.bytes_in = len(body)
    if isinstance(data, bytes) or data is None:
        headers.popall("Content-Length", None)
    headers.popall("Expect", None)  # the gateway's server has already answered any 100-continue
    response: web.StreamResponse | None = None
    try:
        upstream = await pool.request(
            base.raw_host or "", base.port or 80, base.scheme == "https", request.method, path, headers.items(), data
        )
        try:
            result.upstream_status = upstream.status
            small = upstream.content_length is not None and upstream.content_length <= SMALL_BODY
            if (on_body is not None or small) and request.method != "HEAD":
                payload = await upstream.read()  # one write downstream; bounded by SMALL_BODY unless on_body
                if on_body is not None:
                    on_body(payload)
                result.bytes_out = len(payload)
                return web.Response(body=payload, status=upstream.status, headers=_response_headers(upstream.headers))
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason or None)
            response.headers.extend(_response_headers(upstream.headers))
            return await _stream_answer(request, response, upstream, result, pool)
        finally:
            upstream.release()
    except (BodyTooLarge, TimeoutError, ConnectionError, OSError) as exc:
        if response is not None and response.prepared:
            if request.transport is None or request.transport.is_closing():
                return response  # the client went away mid-answer: nothing left to tell it
            raise  # headers are gone; dropping the connection is the only honest signal left
        if result.too_large:
            return error_response(
                413, "body_too_large", f"{request.method} {request.path}: request body is over {body_limit} bytes"
            )
        log.warning(
            "upstream request failed",
            extra={"event": "gateway.upstream_error", "upstream": str(base), "error": type(exc).__name__},
        )
        return upstream_failure(base, exc)


async def _stream_answer(
    request: web.Request,
    response: web.StreamResponse,
    upstream: UpstreamResponse,
    result: ProxyResult,
    pool: UpstreamPool,
) -> web.StreamResponse:
    if upstream.content_length is not None:
        response.content_length = upstream.content_length
    request[STREAMED_KEY] = result
    await response.prepare(request)
    if not await _splice_rest(request, response, upstream, result, pool):
        async for chunk in upstream.iter_chunks():
            result.bytes_out += len(chunk)
            await _send(request, response, chunk, pool.send_timeout_s)
    await response.write_eof()
    return response


async def _send(request: web.Request, response: web.StreamResponse, chunk: bytes, timeout_s: float) -> None:
    """``response.write``, giving up on a client that takes no bytes for ``timeout_s`` (it would hold the
    upstream connection, and ComfyUI's sending, for as long as it likes)."""
    try:
        async with asyncio.timeout(timeout_s):
            await response.write(chunk)
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()
        raise splice.ClientGone(f"the client took no bytes for {timeout_s} s") from None


async def relay_download(
    request: web.Request, pool: UpstreamPool, base: URL, target: str, *, keep_headers: Iterable[str]
) -> web.StreamResponse | None:
    """GET ``target`` from ``base`` and stream a 200 back with only ``keep_headers``; None (nothing sent)
    when the upstream answers anything else or cannot be reached, so the caller can try another."""
    path = base.raw_path.rstrip("/") + target
    host, port, tls = base.raw_host or "", base.port or 80, base.scheme == "https"
    try:
        upstream = await pool.request(host, port, tls, "GET", path, [("Host", base.raw_authority)], None)
    except (TimeoutError, ConnectionError, OSError):
        return None
    try:
        if upstream.status != 200:
            return None
        response = web.StreamResponse(status=200)
        wanted = {h.lower().encode() for h in keep_headers}
        for name, value in upstream.headers:
            if name.lower() in wanted and name.lower() != b"content-length":
                response.headers[name.decode(*HEAD_CODEC)] = value.decode(*HEAD_CODEC)
        return await _stream_answer(request, response, upstream, ProxyResult(), pool)
    finally:
        upstream.release()


async def _splice_rest(
    request: web.Request,
    response: web.StreamResponse,
    upstream: UpstreamResponse,
    result: ProxyResult,
    pool: UpstreamPool,
) -> bool:
    """Relay a large body of known length socket to socket (splice.py); False when that cannot be done here."""
    client = request.transport
    length = upstream.content_length
    if client is None or length is None or length < SPLICE_MIN or request.method == "HEAD":
        return False
    if splice.transport_fd(client) is None:  # TLS, or already closed
        return False
    detached = upstream.detach()
    if detached is None:
        return False
    buffered, source = detached
    for chunk in buffered or [b""]:
        result.bytes_out += len(chunk)
        await _send(request, response, chunk, pool.send_timeout_s)  # the first write also sends the head
    rest = length - result.bytes_out
    if await splice.splice_to_transport(
        source, client, rest, read_timeout_s=pool.read_timeout_s, send_timeout_s=pool.send_timeout_s
    ):
        result.bytes_out = length
    return True


def response_header_block(upstream: UpstreamResponse) -> bytes:
    """``response_header_items`` as header lines; the ones the parser passed on when it could tell alone."""
    if upstream.passed is not None:
        return b"".join(upstream.passed)
    return b"".join(b"%s: %s\r\n" % item for item in response_header_items(upstream.headers))


def response_header_items(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream answer's headers to pass on: no hop-by-hop, none its Connection lists, no Content-Length."""
    listed = {h.strip().lower() for name, value in headers if name.lower() == b"connection" for h in value.split(b",")}
    return [
        (n, v)
        for n, v in headers
        if (low := n.lower()) not in HOP_BY_HOP_BYTES and low not in listed and low != b"content-length"
    ]


def _response_headers(headers: list[tuple[bytes, bytes]]) -> CIMultiDict[str]:
    return CIMultiDict((n.decode(*HEAD_CODEC), v.decode(*HEAD_CODEC)) for n, v in response_header_items(headers))


async def relay_websocket(
    request: web.Request, session: aiohttp.ClientSession, base: URL, target: str, *, headers: CIMultiDict[str]
) -> web.StreamResponse:
    """Open the same WebSocket upstream, then relay frames both ways until either side closes."""
    url = URL(str(base).rstrip("/") + target, encoded=True)
    protocols = tuple(p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip())
    headers.pop("Sec-WebSocket-Protocol", None)
    try:
        upstream = await session.ws_connect(
            url, headers=headers, protocols=protocols, autoclose=False, max_msg_size=0, heartbeat=30.0
        )
    except aiohttp.WSServerHandshakeError as exc:
        return error_response(exc.status or 502, "upstream_refused", f"ComfyUI refused the WebSocket ({exc.status})")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return upstream_failure(base, exc)
    downstream = web.WebSocketResponse(
        protocols=(upstream.protocol,) if upstream.protocol else (), autoclose=False, max_msg_size=0, heartbeat=30.0
    )
    try:
        await downstream.prepare(request)
        await _relay(downstream, upstream)
    finally:
        await upstream.close()
    return downstream


async def _relay(downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    to_up = asyncio.create_task(_pump(downstream, upstream))
    to_down = asyncio.create_task(_pump(upstream, downstream))
    done, pending = await asyncio.wait({to_up, to_down}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    code = next(iter(done)).result()
    for ws in (downstream, upstream):
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close(code=code)


async def _pump(
    src: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    dst: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> int:
    """Copy frames from ``src`` to ``dst``; return the close code to pass on to the other side."""
    while True:
        msg = await src.receive()
        try:
            if msg.type == WSMsgType.TEXT:
                await dst.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == WSMsgType.CLOSE:
                code = int(msg.data) if isinstance(msg.data, int) else 1000
                return code if code not in (1005, 1006) else 1000
            elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
                return src.close_code if src.close_code and src.close_code not in (1005, 1006) else 1000
            elif msg.type == WSMsgType.ERROR:
                return 1011
        except (ConnectionError, RuntimeError):
            return 1001
