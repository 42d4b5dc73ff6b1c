"""The lean front (front.py): it answers plain reads exactly as the aiohttp app would, and hands the rest over.

Each test runs a real gateway (front on, and for comparison front off) in front of a small aiohttp upstream
on 127.0.0.1 that records what it receives and serves the answer shapes a proxy must frame: small, large,
larger than the splice threshold, chunked without a length, 204 and 304.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from tests.helpers.servers import free_port, run_app, run_gateway_app
from wanx.gateway import create_app, load_settings
from wanx.gateway.proxy import SMALL_BODY, SPLICE_MIN
from wanx.gateway.tokens import Role, add_token

pytestmark = pytest.mark.integration

BIG = SMALL_BODY * 3  # streamed chunk by chunk
HUGE = SPLICE_MIN + 12345  # socket to socket
RECORD = web.AppKey("record", list)
OPEN = web.AppKey("open", list)


def _payload(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


def _upstream() -> web.Application:
    app = web.Application()
    app[RECORD] = []
    app[OPEN] = [0]

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/__record":
            request.app[RECORD].append({"target": request.raw_path, "headers": list(request.headers.items())})
        response: web.StreamResponse = await handler(request)
        return response

    async def _stream(request: web.Request, size: int, *, chunked: bool = False) -> web.StreamResponse:
        """A body of ``size`` bytes written in pieces, of known length or chunked; ``/__open`` counts those
        still being written (one stays open for as long as the gateway keeps its connection)."""
        request.app[OPEN][0] += 1
        try:
            response = web.StreamResponse(headers={} if chunked else {"Content-Length": str(size)})
            if chunked:
                response.enable_chunked_encoding()
            await response.prepare(request)
            piece = bytes(65536)
            for start in range(0, size, len(piece)):
                await response.write(piece[: size - start])
            await response.write_eof()
            return response
        finally:
            request.app[OPEN][0] -= 1

    async def models(request: web.Request) -> web.StreamResponse:
        """``/api/models/{what}``, a route the user role may read: small, size-N, chunked or status-N."""
        what = request.match_info["what"]
        if what == "small":
            return web.json_response({"ok": True}, headers={"X-Upstream": "yes", "Keep-Alive": "timeout=5"})
        if what.startswith("size-"):
            return web.Response(body=_payload(int(what[5:])), content_type="application/octet-stream")
        if what.startswith("stream-"):
            return await _stream(request, int(what[7:]))
        if what.startswith("chunked-"):
            return await _stream(request, int(what[8:]), chunked=True)
        if what == "disposition":
            return web.Response(body=b"x", headers={"Content-Disposition": 'attachment; filename="caf\u00e9.mp4"'})
        if what.startswith("status-"):
            return web.Response(status=int(what[7:]), headers={"ETag": '"abc"'})
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"one,", b"two,", b"three"):
            await response.write(part)
        await response.write_eof()
        return response

    async def log(request: web.Request) -> web.Response:
        return web.json_response(request.app[RECORD])

    async def still_open(request: web.Request) -> web.Response:
        return web.json_response(request.app[OPEN][0])

    app.middlewares.append(record)
    app.router.add_get("/api/models/{what}", models)
    app.router.add_get("/__record", log)
    app.router.add_get("/__open", still_open)
    return app


@dataclass
class Pair:
    """The same upstream behind two gateways: ``fast`` (the front on) and ``plain`` (aiohttp only)."""

    upstream: str
    fast: str
    plain: str
    admin: str
    user: str
    audit: io.StringIO
    plain_audit: io.StringIO

    def record(self) -> list[dict[str, Any]]:
        return list(_ask(self.upstream, "/__record"))


def _ask(upstream: str, path: str) -> Any:
    """What the test upstream says at ``path`` (its JSON)."""
    with socket.create_connection(("127.0.0.1", URL(upstream).port or 80)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = _read_all(sock)
    return json.loads(data.partition(b"\r\n\r\n")[2])


def _still_open(upstream: str) -> int:
    """How many of the test upstream's streamed answers are still being written."""
    return int(_ask(upstream, "/__open"))


async def _open_after(upstream: str, seconds: float) -> int:
    """``_still_open`` once it reaches 0, or when ``seconds`` have passed."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (n := await asyncio.to_thread(_still_open, upstream)) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return n


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(1 << 20):
        data += chunk
    return data


@contextlib.contextmanager
def _pair(tmp: Path, upstream: str | None = None, **settings_overrides: Any) -> Iterator[Pair]:
    tokens = tmp / "tokens.json"
    admin = add_token(tokens, name="ops", role=Role.ADMIN)
    user = add_token(tokens, name="alice", role=Role.USER)
    audits = (io.StringIO(), io.StringIO())
    with contextlib.ExitStack() as stack:
        base = upstream or stack.enter_context(run_app(_upstream))
        gateways = []
        for fast, stream in zip((True, False), audits, strict=True):
            settings = load_settings({}, upstream=base, tokens_file=tokens, fast_path=fast, **settings_overrides)
            gateways.append(
                stack.enter_context(run_gateway_app(lambda s=settings, a=stream: create_app(s, audit_stream=a)))
            )
        yield Pair(base, gateways[0], gateways[1], admin, user, *audits)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with _pair(tmp_path) as p:
        yield p


async def _metrics(base: str, admin: str) -> str:
    async with (
        aiohttp.ClientSession() as s,
        s.get(base + "/metrics", headers={"Authorization": f"Bearer {admin}"}) as r,
    ):
        return await r.text()


def _front_count(metrics: str, kind: str) -> int:
    for line in metrics.splitlines():
        if line.startswith(f'wanx_gateway_front_total{{kind="{kind}"}}'):
            return int(line.split()[-1])
    return 0


def _exchange(base: str, raw: bytes) -> bytes:
    """Send ``raw`` (one or more requests, the last with Connection: close) and read until the server closes."""
    url = URL(base)
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(raw)
        return _read_all(sock)


def _split_answers(data: bytes, head_at: int | None = None) -> list[tuple[int, dict[str, str], bytes]]:
    """Parse back-to-back HTTP/1.1 answers (Content-Length or chunked framing); answer ``head_at`` is to a HEAD."""
    out: list[tuple[int, dict[str, str], bytes]] = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if len(out) == head_at:
            body = b""
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line, 16)
                body, data = body + data[:size], data[size + 2 :]
                if size == 0:
                    break
        else:
            size = int(headers.get("content-length", "0"))
            body, data = data[:size], data[size:]
        out.append((int(lines[0].split()[1]), headers, body))
    return out


def _get(path: str, token: str, *, close: bool = False, extra: str = "", method: str = "GET") -> bytes:
    connection = "Connection: close\r\n" if close else ""
    head = f"{method} {path} HTTP/1.1\r\nHost: gw.example\r\nAuthorization: Bearer {token}\r\n"
    return f"{head}{extra}{connection}\r\n".encode()


UPSTREAM_HEADERS_SEEN = (
    "host",
    "origin",
    "cookie",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-kept",
)


async def test_upstream_receives_the_same_request_either_way(pair: Pair) -> None:
    extra = (
        "Origin: http://gw.example\r\nCookie: theme=dark; wanx_session=nope; lang=en\r\n"
        "X-Forwarded-For: 10.0.0.9\r\nX-Kept: 1\r\nX-Dropped: 2\r\nConnection: X-Dropped\r\n"
    )
    target = "/api/models/small?filename=my%20clip+1%26.png&token=" + pair.user + "&type=output"
    seen = []
    for base in (pair.fast, pair.plain):
        before = len(pair.record())
        raw = _get(target, pair.user, extra=extra) + _get("/api/models/small", pair.user, close=True)
        answers = _split_answers(await asyncio.to_thread(_exchange, base, raw))
        assert [a[0] for a in answers] == [200, 200]
        assert answers[0][1]["x-upstream"] == "yes" and "keep-alive" not in answers[0][1]
        assert json.loads(answers[0][2]) == {"ok": True}
        first = pair.record()[before]
        headers = {k.lower(): v for k, v in first["headers"]}
        assert "authorization" not in headers and "x-dropped" not in headers
        seen.append((first["target"], {k: headers.get(k) for k in UPSTREAM_HEADERS_SEEN}))
    assert seen[0] == seen[1]
    target_seen, headers_seen = seen[0]
    assert target_seen == "/api/models/small?filename=my%20clip+1%26.png&type=output"  # exact bytes, no token
    assert headers_seen["cookie"] == "theme=dark; lang=en"
    assert headers_seen["x-forwarded-for"] == "10.0.0.9, 127.0.0.1"
    assert headers_seen["origin"] == "http://gw.example"
    assert _front_count(await _metrics(pair.fast, pair.admin), "fast") >= 2
    assert _front_count(await _metrics(pair.plain, pair.admin), "fast") == 0


@pytest.mark.parametrize(
    "path", ["/api/models/small", f"/api/models/size-{BIG}", f"/api/models/size-{HUGE}", "/api/models/chunked"]
)
async def test_bodies_are_framed_and_complete(pair: Pair, path: str) -> None:
    expected = {"/api/models/small": b'{"ok": true}', "/api/models/chunked": b"one,two,three"}.get(path)
    if expected is None:
        expected = _payload(int(path.rsplit("-", 1)[1]))
    for base in (pair.fast, pair.plain):
        raw = _get(path, pair.admin) + _get(path, pair.admin, method="HEAD") + _get(path, pair.admin, close=True)
        answers = _split_answers(await asyncio.to_thread(_exchange, base, raw), head_at=1)
        assert len(answers) == 3, base
        (s1, _, body1), (s2, _, body2), (s3, _, body3) = answers
        assert (s1, s2, s3) == (200, 200, 200)
        assert body1 == expected and body3 == expected and body2 == b""


@pytest.mark.parametrize("code", [204, 304])
async def test_answers_without_a_body(pair: Pair, code: int) -> None:
    raw = _get(f"/api/models/status-{code}", pair.user) + _get("/api/models/small", pair.user, close=True)
    data = await asyncio.to_thread(_exchange, pair.fast, raw)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {code} ".encode())
    assert b"transfer-encoding" not in head.lower()
    assert rest.startswith(b"HTTP/1.1 200 ")  # the next answer follows at once: no body was framed


async def test_the_rest_goes_to_aiohttp_on_the_same_connection(pair: Pair) -> None:
    raw = (
        _get("/api/models/small", pair.user)  # fast
        + b"GET /api/models/small HTTP/1.1\r\nHost: gw.example\r\n\r\n"  # no credentials: aiohttp answers 401
        + _get("/api/models/small", pair.user)  # aiohttp from now on, same answer as the front's
        + b"POST /api/models/small HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 2\r\n"
        + f"Authorization: Bearer {pair.user}\r\nConnection: close\r\n\r\n{{}}".encode()
    )
    before = await _metrics(pair.fast, pair.admin)
    answers = _split_answers(await asyncio.to_thread(_exchange, pair.fast, raw))
    assert [a[0] for a in answers] == [200, 401, 200, 403]
    assert answers[1][1]["www-authenticate"].startswith("Bearer")
    assert answers[0][2] == answers[2][2]
    after = await _metrics(pair.fast, pair.admin)
    assert _front_count(after, "handed_off") == _front_count(before, "handed_off") + 2  # this one, and /metrics


@pytest.mark.parametrize(
    "raw",
    [
        "GET /api/models/small HTTP/1.0\r\nHost: gw\r\nAuthorization: Bearer {t}\r\n\r\n",
        "GET /api//models/small HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n",
        'GET /api/models/small HTTP/1.1\r\nHost: gw\r\nCookie: wanx_session="{t}"\r\nConnection: close\r\n\r\n',
        "GET /api/models/small HTTP/1.1\nHost: gw\nAuthorization: Bearer {t}\nConnection: close\n\n",
        "GET /api/models/small HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {t}\r\nUpgrade: h2c\r\n"
        "Connection: close\r\n\r\n",
        "GET /api/models/small?pad=" + "a" * 20000 + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {t}\r\n"
        "Connection: close\r\n\r\n",
    ],
    ids=["http10", "double-slash", "quoted-cookie", "bare-lf", "upgrade", "long-head"],
)
async def test_odd_requests_are_handed_over_and_answered(pair: Pair, raw: str) -> None:
    before = _front_count(await _metrics(pair.fast, pair.admin), "handed_off")
    data = await asyncio.to_thread(_exchange, pair.fast, raw.format(t=pair.user).encode())
    assert data.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), data[:80]
    assert _front_count(await _metrics(pair.fast, pair.admin), "handed_off") >= before + 2


async def test_audit_line_and_metrics_of_a_fast_request(pair: Pair) -> None:
    await asyncio.to_thread(_exchange, pair.fast, _get(f"/api/models/size-{BIG}?token=x", pair.user, close=True))
    lines = [json.loads(line) for line in pair.audit.getvalue().splitlines()]
    line = next(x for x in lines if x["path"] == f"/api/models/size-{BIG}")
    assert (line["token"], line["role"], line["method"], line["status"]) == ("alice", "user", "GET", 200)
    assert line["bytes"] == BIG and line["remote"] == "127.0.0.1"
    assert pair.user not in pair.audit.getvalue()
    assert 'wanx_gateway_requests_total{route="/models/{folder}",method="GET",status="200"}' in await _metrics(
        pair.fast, pair.admin
    )  # the policy's label, as with aiohttp


async def test_audit_counts_body_bytes_alike_on_both_paths(pair: Pair) -> None:
    """``bytes`` is the body sent, whether the answer was small, streamed, spliced or chunked; and for an answer
    the client left in the middle, as far as it went (not the whole length, not 0)."""
    sizes = {"small": len(b'{"ok": true}'), f"size-{BIG}": BIG, f"size-{HUGE}": HUGE, "chunked": len(b"one,two,three")}
    for base, audit in ((pair.fast, pair.audit), (pair.plain, pair.plain_audit)):
        for what in sizes:
            await asyncio.to_thread(_exchange, base, _get(f"/api/models/{what}", pair.user, close=True))
        url = URL(base)
        with socket.create_connection((url.host, url.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(_get(f"/api/models/size-{HUGE * 4}", pair.user))
            sock.recv(1000)
        lines: list[dict[str, Any]] = []
        for _ in range(100):  # the gateway writes the line once it notices the client is gone
            lines = [json.loads(line) for line in audit.getvalue().splitlines()]
            if len(lines) == len(sizes) + 1:
                break
            await asyncio.sleep(0.05)
        by_path = {line["path"].rpartition("/")[2]: line for line in lines}
        assert {what: by_path[what]["bytes"] for what in sizes} == sizes, base
        gone = by_path[f"size-{HUGE * 4}"]
        assert gone["status"] == 200 and 0 < gone["bytes"] < HUGE * 4, (base, gone)


async def test_upstream_down_gets_503_json(tmp_path: Path) -> None:
    with _pair(tmp_path, upstream=f"http://127.0.0.1:{free_port()}") as p:
        answers = _split_answers(
            await asyncio.to_thread(_exchange, p.fast, _get("/api/models/small", p.user, close=True))
        )
    (status, headers, body) = answers[0]
    assert status == 503 and headers["retry-after"] == "5"
    assert json.loads(body)["error"]["code"] == "upstream_unavailable"


async def test_client_gone_mid_answer_leaves_the_gateway_serving(pair: Pair) -> None:
    url = URL(pair.fast)
    for path in (f"/api/models/size-{BIG}", f"/api/models/size-{HUGE}"):
        with socket.create_connection((url.host, url.port)) as sock:
            sock.sendall(_get(path, pair.user))
            sock.recv(1000)
    answers = _split_answers(
        await asyncio.to_thread(_exchange, pair.fast, _get("/api/models/small", pair.user, close=True))
    )
    assert answers[0][0] == 200


@pytest.mark.parametrize("front", ["fast", "plain"])
async def test_client_gone_before_the_splice_leaves_no_upstream_connection_open(pair: Pair, front: str) -> None:
    """A client that leaves while the head is still on its way: the gateway closes its upstream connection
    (it used to keep it open when the client's socket closed during the wait before the splice)."""
    url = URL(pair.fast if front == "fast" else pair.plain)
    for _ in range(8):
        with socket.create_connection((url.host, url.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(_get(f"/api/models/stream-{HUGE * 4}", pair.user))
            sock.recv(1000)
    assert await _open_after(pair.upstream, 5) == 0


@pytest.mark.parametrize("front", ["fast", "plain"])
@pytest.mark.parametrize("what", [f"stream-{HUGE * 8}", f"chunked-{HUGE * 8}"])  # spliced, and through Python
async def test_a_client_that_takes_nothing_is_dropped(tmp_path: Path, front: str, what: str) -> None:
    """A client that asks for a large answer and reads none of it is dropped after the send timeout (twice
    the upstream timeout), and the upstream connection with it: it no longer holds ComfyUI's sending."""
    with _pair(tmp_path, upstream_timeout_s=0.5) as p:
        url = URL(p.fast if front == "fast" else p.plain)
        with socket.create_connection((url.host, url.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(_get(f"/api/models/{what}", p.user))
            await asyncio.sleep(0.5)
            assert await asyncio.to_thread(_still_open, p.upstream) == 1  # the upstream is stuck writing
            assert await _open_after(p.upstream, 10) == 0


async def test_shutdown_ends_answers_in_flight(tmp_path: Path) -> None:
    """Closing the gateway cuts the answers still on their way and closes their upstream connections."""
    tokens = tmp_path / "tokens.json"
    user = add_token(tokens, name="alice", role=Role.USER)
    with run_app(_upstream) as base:
        settings = load_settings({}, upstream=base, tokens_file=tokens)
        with run_gateway_app(lambda: create_app(settings, audit_stream=io.StringIO())) as gw:
            url = URL(gw)
            sock = socket.create_connection((url.host, url.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(_get(f"/api/models/chunked-{HUGE * 8}", user))
            await asyncio.sleep(0.5)
            assert await asyncio.to_thread(_still_open, base) == 1
        assert await _open_after(base, 5) == 0
        sock.close()


async def test_revoked_token_refused_on_the_same_connection(pair: Pair, tmp_path: Path) -> None:
    from wanx.gateway.tokens import revoke_token

    url = URL(pair.fast)
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(_get("/api/models/small", pair.user))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        revoke_token(tmp_path / "tokens.json", "alice")
        await asyncio.sleep(1.2)  # the token set looks at its file at most once a second
        sock.sendall(_get("/api/models/small", pair.user, close=True))
        assert _read_all(sock).startswith(b"HTTP/1.1 401 ")


@contextlib.contextmanager
def _raw_upstream(hits: list[str], gate: threading.Event | None = None) -> Iterator[str]:
    """An upstream written byte by byte. ``/early/NAME`` answers 103 first and then NAME's own 200 after
    a pause; ``/slow`` never answers; ``/twice`` answers twice; ``/unframed`` ends its body by closing;
    ``/gated`` sends 64 MiB once ``gate`` is set, and appends 'gated: ended' to ``hits`` when its
    connection goes; anything else answers at once."""

    tasks: set[asyncio.Task[Any]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                path = head.split(b" ", 2)[1].decode()
                hits.append(path)
                if path == "/api/models/slow":
                    await asyncio.sleep(30)
                    return
                if path == "/api/models/gated" and gate is not None:
                    await asyncio.to_thread(gate.wait, 10)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
                    try:
                        for _ in range(1024):
                            writer.write(bytes(65536))
                            await writer.drain()
                    finally:
                        hits.append("gated: ended")
                    continue
                body = f"for {path}".encode()
                if path == "/api/models/unframed":  # no length, not chunked: the close ends the body
                    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body * 1000)
                    await writer.drain()
                    break
                if path == "/api/models/twice":  # a broken upstream: two answers to one request, in one write
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body) * 2)
                    continue
                if path.startswith("/api/models/early"):
                    writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.05)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
                await writer.drain()
        writer.close()
        tasks.discard(task)

    async def start(port: int) -> Any:
        server = await asyncio.start_server(serve, "127.0.0.1", port)

        async def stop() -> None:
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

        return stop

    from tests.helpers.servers import serve_in_thread

    with serve_in_thread(start) as url:
        yield url


async def test_an_informational_answer_is_not_the_answer(tmp_path: Path) -> None:
    hits: list[str] = []
    with _raw_upstream(hits) as upstream, _pair(tmp_path, upstream=upstream) as p:
        for base in (p.fast, p.plain):
            for name in ("early-alice", "early-bob", "plain-carol"):
                path = f"/api/models/{name}"
                answers = _split_answers(await asyncio.to_thread(_exchange, base, _get(path, p.user, close=True)))
                assert [(a[0], a[2]) for a in answers] == [(200, f"for {path}".encode())], base


async def test_a_body_ended_by_the_close_arrives_whole(tmp_path: Path) -> None:
    """An answer with neither a length nor chunks (HTTP/1.0 style) ends when the upstream closes: the client
    gets all of it, re-framed (it used to get a truncated answer from the front, a 500 from aiohttp)."""
    hits: list[str] = []
    with _raw_upstream(hits) as upstream, _pair(tmp_path, upstream=upstream) as p:
        for base in (p.fast, p.plain):
            raw = _get("/api/models/unframed", p.user) + _get("/api/models/next", p.user, close=True)
            answers = _split_answers(await asyncio.to_thread(_exchange, base, raw))
            assert [(a[0], a[2]) for a in answers] == [
                (200, b"for /api/models/unframed" * 1000),
                (200, b"for /api/models/next"),
            ], base


async def test_a_second_answer_to_one_request_reaches_nobody(tmp_path: Path) -> None:
    """Bytes after a whole answer are never parsed into it, nor served to the next caller: the connection
    is dropped (the status line used to come out as '200 OKOK')."""
    hits: list[str] = []
    with _raw_upstream(hits) as upstream, _pair(tmp_path, upstream=upstream) as p:
        for base in (p.fast, p.plain):
            for path in ("/api/models/warm", "/api/models/twice", "/api/models/next", "/api/models/last"):
                raw = _get(path, p.user, close=True)
                data = await asyncio.to_thread(_exchange, base, raw)
                assert data.startswith(b"HTTP/1.1 200 OK\r\n"), (base, path, data[:100])
                assert _split_answers(data) == [(200, mock.ANY, f"for {path}".encode())], (base, path)


async def test_a_client_gone_as_a_large_head_arrives_leaves_no_upstream_connection(tmp_path: Path) -> None:
    """The client's reset and the upstream's head land in the same turn of the gateway's loop: the task that
    would stream the answer is cancelled before it starts. It used to skip its clean-up then, and the
    upstream connection stayed open with ComfyUI stuck sending."""
    hits: list[str] = []
    gate = threading.Event()
    loops: list[asyncio.AbstractEventLoop] = []
    tokens = tmp_path / "tokens.json"
    user = add_token(tokens, name="alice", role=Role.USER)

    def factory(settings: Any) -> web.Application:
        loops.append(asyncio.get_running_loop())
        return create_app(settings, audit_stream=io.StringIO())

    with _raw_upstream(hits, gate) as upstream:
        settings = load_settings({}, upstream=upstream, tokens_file=tokens)
        with run_gateway_app(lambda: factory(settings)) as gw:
            await asyncio.to_thread(_exchange, gw, _get("/api/models/warm", user, close=True))  # a pooled connection
            url = URL(gw)
            sock = socket.create_connection((url.host, url.port))
            sock.sendall(_get("/api/models/gated", user))
            await asyncio.sleep(0.3)  # the request is upstream, waiting for the gate
            loops[0].call_soon_threadsafe(time.sleep, 0.6)  # hold the gateway's loop still ...
            await asyncio.sleep(0.1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # ... while the client resets ...
            await asyncio.sleep(0.05)
            gate.set()  # ... and the head arrives: both wait for the same turn
            for _ in range(50):
                if "gated: ended" in hits:
                    break
                await asyncio.sleep(0.1)
            assert "gated: ended" in hits


async def test_an_upstream_timeout_is_not_retried(tmp_path: Path) -> None:
    hits: list[str] = []
    with _raw_upstream(hits) as upstream, _pair(tmp_path, upstream=upstream, upstream_timeout_s=0.1) as p:
        await asyncio.to_thread(_exchange, p.fast, _get("/api/models/warm", p.user, close=True))  # a pooled connection
        started = asyncio.get_running_loop().time()
        answers = _split_answers(
            await asyncio.to_thread(_exchange, p.fast, _get("/api/models/slow", p.user, close=True))
        )
        elapsed = asyncio.get_running_loop().time() - started
    assert answers[0][0] == 504
    assert hits.count("/api/models/slow") == 1
    assert elapsed < 1.9  # one read timeout (1 s here), not two


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("Host: other.example\r\n", 400),  # a second Host: aiohttp's parser refuses it
        ("User-Agent: a\r\nUser-Agent: b\r\n", 400),
        ("Cookie: a=1, wanx_session=junk\r\n", 200),  # Bearer still counts; the cookie is only odd
    ],
)
async def test_what_aiohttp_refuses_the_front_does_not_pass(pair: Pair, extra: str, status: int) -> None:
    data = await asyncio.to_thread(
        _exchange, pair.fast, _get("/api/models/small", pair.user, close=True, extra=extra.format(t=pair.user))
    )
    assert data.split(b" ", 2)[1] == str(status).encode(), data[:200]


@pytest.mark.parametrize(
    ("cookie", "status"),
    [
        ("theme=dark; wanx_session={u}; lang=en", 200),
        ('a="x; wanx_session={u}; y"', 200),  # malformed quoting, but one plain session pair: it is the token
        ("wanx_session={u}; a=1, wanx_session={a}", 401),  # parsers split on ',' or not: refused
        ("a=1, wanx_session={u}", 401),
        ("a=1 wanx_session={u}", 401),
        ("wanx_session ={u}", 401),
        ("wanx_session\t={u}", 401),
        ("wanx_session={u}; wanx_session ={a}", 401),
        ("wanx_session={u}; wanx_session={a}", 401),  # twice: which one?
        ('wanx_session="{u}"', 401),
    ],
)
async def test_the_session_cookie_is_read_one_way_and_never_forwarded(pair: Pair, cookie: str, status: int) -> None:
    """Both paths read the session cookie with ``auth.session_cookie``; the filter before ComfyUI drops every
    pair that names it, so neither token in the header goes upstream, however a parser would split it."""
    header = f"Cookie: {cookie.format(u=pair.user, a=pair.admin)}\r\n"
    for base in (pair.fast, pair.plain):
        before = len(pair.record())
        raw = f"GET /api/models/small HTTP/1.1\r\nHost: gw.example\r\n{header}Connection: close\r\n\r\n"
        data = await asyncio.to_thread(_exchange, base, raw.encode())
        assert data.split(b" ", 2)[1] == str(status).encode(), (base, data[:300])
        for seen in pair.record()[before:]:
            forwarded = " ".join(v for _, v in seen["headers"])
            assert pair.user not in forwarded and pair.admin not in forwarded and "wanx_session" not in forwarded
            if "theme" in cookie:
                assert dict(seen["headers"])["Cookie"] == "theme=dark; lang=en"


async def test_header_bytes_pass_unchanged_both_ways(pair: Pair) -> None:
    """Non-ASCII header bytes (UTF-8, or not) reach ComfyUI as sent, and a UTF-8 file name in its answer
    reaches the client as sent, on both paths (the aiohttp path used to answer 500, or re-encode them)."""
    seen, heads = [], []
    for base in (pair.fast, pair.plain):
        before = len(pair.record())
        raw = _get("/api/models/disposition", pair.user, close=True, extra="X-Name: caf\xe9 \u20ac\r\n")
        raw = raw.replace("\xe9".encode(), b"\xe9")  # a lone latin-1 byte beside a UTF-8 euro sign
        data = await asyncio.to_thread(_exchange, base, raw)
        assert data.startswith(b"HTTP/1.1 200 "), (base, data[:300])
        heads.append([line for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n") if b"isposition" in line])
        seen.append(dict(pair.record()[before]["headers"])["X-Name"])
    assert seen == ["caf\udce9 \u20ac"] * 2  # aiohttp's reading of b"caf\xe9 \xe2\x82\xac"
    assert heads == [[b'Content-Disposition: attachment; filename="caf\xc3\xa9.mp4"']] * 2


async def test_half_close_after_a_hand_off_closes_once_answered(pair: Pair) -> None:
    url = URL(pair.fast)
    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        sock.sendall(_get("/api/models/small", pair.user) + b"GET /api/models/small HTTP/1.1\r\nHost: gw\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answers = _split_answers(await asyncio.to_thread(_read_all, sock))  # returns only when the gateway closes
    assert [a[0] for a in answers] == [200, 401]
