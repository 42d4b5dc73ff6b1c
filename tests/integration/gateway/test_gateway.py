"""Gateway behaviour over real sockets: login, CSRF, forwarding, checks, limits, metrics, audit."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from tests.integration.gateway.conftest import Gate, gateway_in_front

pytestmark = pytest.mark.integration


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _fake_requests(gate: Gate) -> list[dict[str, object]]:
    async with aiohttp.ClientSession() as s, s.get(gate.upstream + "/__fake/requests") as r:
        return list(await r.json())


def _raw_get(gate: Gate, raw_path: str, token: str) -> tuple[int, bytes]:
    """Send a request line byte for byte (clients normalise paths; attackers do not)."""
    url = URL(gate.url)
    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        sock.sendall(
            f"GET {raw_path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("/api/../internal/folder_paths", 403),
        ("//internal/logs/raw", 403),
        ("/./vhs/getpath?path=/etc/", 403),
        ("/vhs%2Fgetpath?path=/etc/", 403),
        ("/API/vhs/getpath", 403),
        ("/%2e%2e/internal/logs/raw", 400),
        ("/api//queue/", 200),
    ],
)
async def test_raw_path_tricks(gate: Gate, raw: str, status: int) -> None:
    got, body = await asyncio.to_thread(_raw_get, gate, raw, gate.user)
    assert got == status, body
    seen = [r["path"] for r in await _fake_requests(gate)]
    if status == 200:
        assert "/api/queue" in seen  # forwarded in its canonical spelling
    else:
        assert not any("internal" in str(p) or "getpath" in str(p) for p in seen)


async def test_browser_redirect_and_api_401(gate: Gate) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(
            gate.url + "/history?max_items=5&token=", headers={"Accept": "text/html"}, allow_redirects=False
        ) as r:
            assert r.status == 302
            assert r.headers["Location"] == "/login?next=%2Fhistory%3Fmax_items%3D5"
        async with s.get(gate.url + "/history") as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"] == 'Bearer realm="wanx"'
            assert (await r.json())["error"]["code"] == "unauthorized"
        async with s.get(gate.url + "/history", headers=_bearer("nope")) as r:
            assert r.status == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
            assert "nope" not in await r.text()
        for path in ("/healthz", "/login"):
            async with s.get(gate.url + path) as r:
                assert r.status == 200


async def test_login_cookie_and_logout(gate: Gate) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as s:
        form = {"token": gate.user, "next": "//evil.example/"}
        async with s.post(gate.url + "/login", data=form, headers={"Origin": gate.url}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/"
            cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        async with s.get(gate.url + "/api/queue") as r:
            assert r.status == 200
        # state-changing cookie requests need an Origin naming this site
        async with s.post(gate.url + "/api/interrupt") as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "cross_site_request"
        async with s.post(gate.url + "/api/interrupt", headers={"Origin": "http://evil.example"}) as r:
            assert r.status == 403
        async with s.post(gate.url + "/api/interrupt", headers={"Origin": gate.url}) as r:
            assert r.status == 200  # and ComfyUI's own origin check passed upstream
        async with s.post(gate.url + "/logout", headers={"Origin": gate.url}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login"
        async with s.get(gate.url + "/api/queue") as r:
            assert r.status == 401
    upstream = await _fake_requests(gate)
    last = upstream[-1]["headers"]
    assert isinstance(last, dict)
    assert last["Origin"] == f"http://{URL(gate.url).host}:{URL(gate.url).port}"
    assert last["Host"] == f"{URL(gate.url).host}:{URL(gate.url).port}"
    assert last["X-Forwarded-For"] == "127.0.0.1"


async def test_login_refusals(gate: Gate) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(
            gate.url + "/login", data={"token": gate.user}, headers={"Origin": "http://evil.example"}
        ) as r:
            assert r.status == 403 and "Set-Cookie" not in r.headers
        async with s.post(gate.url + "/login", data={"token": gate.revoked}) as r:
            assert r.status == 401 and "Set-Cookie" not in r.headers
            assert gate.revoked not in await r.text()


async def test_secure_cookie_only_with_trusted_forwarded_proto(tmp_path: Path) -> None:
    with gateway_in_front(tmp_path, trust_forwarded_proto=True) as gate:
        async with aiohttp.ClientSession() as s:
            headers = {"X-Forwarded-Proto": "https"}
            async with s.post(
                gate.url + "/login", data={"token": gate.user}, headers=headers, allow_redirects=False
            ) as r:
                assert "Secure" in r.headers["Set-Cookie"]


async def test_prompt_graph_refused_for_user_not_admin(gate: Gate) -> None:
    graph = {"prompt": {"5": {"class_type": "VHS_LoadVideoPath", "inputs": {"video": "/etc/passwd"}},
                        "9": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}}}}  # fmt: skip
    async with aiohttp.ClientSession() as s:
        async with s.post(gate.url + "/api/prompt", json=graph, headers=_bearer(gate.user)) as r:
            body = await r.json()
            assert r.status == 403
            assert body["error"]["node_id"] == "5" and body["error"]["class_type"] == "VHS_LoadVideoPath"
            assert "node 5 (VHS_LoadVideoPath)" in body["error"]["message"]
        prefix = {"prompt": {"9": {"class_type": "VHS_VideoCombine", "inputs": {"filename_prefix": "../../x"}}}}
        async with s.post(gate.url + "/prompt/", json=prefix, headers=_bearer(gate.user)) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "host_path_refused"
        async with s.post(gate.url + "/api/prompt", json=graph, headers=_bearer(gate.admin)) as r:
            assert r.status == 200
            prompt_id = (await r.json())["prompt_id"]
    assert not any("/etc/passwd" in json.dumps(r) for r in (await _fake_requests(gate))[:-1])
    lines = [line for line in gate.audit_lines() if line["prompt_id"]]
    assert lines[-1]["prompt_id"] == prompt_id and lines[-1]["token"] == "ops"


async def test_internal_logs_vhs_path_and_clear(gate: Gate) -> None:
    async with aiohttp.ClientSession(headers=_bearer(gate.user)) as s:
        async with s.get(gate.url + "/internal/logs") as r:
            assert r.status == 200 and "administrators" in await r.json()
        for query in ("type=path&filename=/etc/passwd", "type=output&type=path", "type=PATH"):
            async with s.get(gate.url + "/api/vhs/viewvideo?" + query) as r:
                assert r.status == 403, query
        async with s.post(gate.url + "/api/queue", json={"clear": True}) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "clear_refused"
        async with s.post(gate.url + "/api/history", json={"delete": ["a"]}) as r:
            assert r.status == 200
    async with (
        aiohttp.ClientSession(headers=_bearer(gate.admin)) as s,
        s.post(gate.url + "/queue", json={"clear": True}) as r,
    ):
        assert r.status == 200


async def test_limits(tmp_path: Path) -> None:
    graph = {"prompt": {"1": {"class_type": "PreviewImage", "inputs": {}}}}
    with gateway_in_front(
        tmp_path, prompt_burst=2, prompt_rate_per_minute=1.0, max_upload_bytes=1000, max_prompt_bytes=2000
    ) as gate:
        async with aiohttp.ClientSession(headers=_bearer(gate.user)) as s:
            for _ in range(2):
                async with s.post(gate.url + "/prompt", json=graph) as r:
                    assert r.status == 200
            async with s.post(gate.url + "/prompt", json=graph) as r:
                assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
            async with s.post(gate.url + "/prompt", data=b"{" + b" " * 3000 + b"}") as r:
                assert r.status == 413
            form = aiohttp.FormData()
            form.add_field("image", b"x" * 5000, filename="big.png")
            async with s.post(gate.url + "/upload/image", data=form) as r:
                assert r.status == 413 and (await r.json())["error"]["code"] == "body_too_large"

            async def chunked() -> object:  # no Content-Length: the limit must hold while streaming
                yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
                for _ in range(10):
                    yield b"y" * 500
                    await asyncio.sleep(0.01)

            multipart = {"Content-Type": "multipart/form-data; boundary=b"}
            async with s.post(gate.url + "/upload/image", data=chunked(), headers=multipart) as r:
                assert r.status == 413
    with gateway_in_front(tmp_path / "q", max_queued_per_token=1) as gate:
        slow = {
            "prompt": {"1": {"class_type": "KSampler", "inputs": {}}, "2": {"class_type": "PreviewImage", "inputs": {}}}
        }
        async with aiohttp.ClientSession(headers=_bearer(gate.user)) as s:
            statuses = []
            for _ in range(4):
                async with s.post(gate.url + "/prompt", json=slow) as r:
                    statuses.append(r.status)
            assert statuses[0] == 200 and 429 in statuses


async def test_metrics_admin_only(gate: Gate) -> None:
    async with aiohttp.ClientSession() as s:
        await s.get(gate.url + "/api/queue", headers=_bearer("bad"))
        async with s.get(gate.url + "/metrics", headers=_bearer(gate.user)) as r:
            assert r.status == 403
        async with s.get(gate.url + "/metrics", headers=_bearer(gate.admin)) as r:
            text = await r.text()
    assert r.status == 200
    assert 'wanx_gateway_auth_failures_total{reason="invalid"} 1' in text
    assert (
        'wanx_gateway_requests_total{route="/metrics",method="GET",status="403"} 1' in text or 'route="other"' in text
    )
    assert "wanx_gateway_request_duration_seconds_bucket" in text


async def test_audit_lines(gate: Gate) -> None:
    async with aiohttp.ClientSession() as s:
        await s.get(gate.url + f"/api/view?filename=nothing.png&token={gate.user}")
        await s.get(gate.url + "/api/queue", headers=_bearer(gate.revoked))
    lines = gate.audit_lines()
    assert lines[0]["token"] == "alice" and lines[0]["path"] == "/api/view" and lines[0]["status"] == 404
    assert lines[1]["token"] is None and lines[1]["status"] == 401 and lines[1]["bytes"] > 0
    assert {"ts", "event", "method", "bytes", "duration_ms", "prompt_id"} <= set(lines[0])
    assert not any(s in gate.audit.getvalue() for s in gate.secrets())


async def test_revocation_takes_effect_while_running(gate: Gate) -> None:
    from wanx.gateway.tokens import revoke_token

    async with aiohttp.ClientSession(headers=_bearer(gate.user)) as s:
        async with s.get(gate.url + "/api/queue") as r:
            assert r.status == 200
        revoke_token(gate.tokens_file, "alice")
        for _ in range(40):
            async with s.get(gate.url + "/api/queue") as r:
                if r.status == 401:
                    break
            await asyncio.sleep(0.1)
        assert r.status == 401


async def test_upstream_killed_and_restarted(gate: Gate) -> None:
    async with aiohttp.ClientSession(headers=_bearer(gate.user)) as s:
        async with s.get(gate.url + "/readyz") as r:
            assert r.status == 200
        gate.comfy.kill()
        async with s.get(gate.url + "/api/queue") as r:
            body = await r.json()
            assert r.status == 503 and body["error"]["code"] == "upstream_unavailable"
            assert "Retry-After" in r.headers and "restarting" in body["error"]["message"]
        async with s.get(gate.url + "/readyz") as r:
            assert r.status == 503
        async with s.get(gate.url + "/healthz") as r:
            assert r.status == 200
        gate.comfy.start()
        async with s.get(gate.url + "/api/queue") as r:
            assert r.status == 200
        async with s.get(gate.url + "/readyz") as r:
            assert r.status == 200


async def test_head_like_get_keeps_length(gate: Gate) -> None:
    out = gate.comfy_root / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "clip.mp4").write_bytes(b"v" * 300_000)
    async with aiohttp.ClientSession(headers=_bearer(gate.user)) as s:
        async with s.head(gate.url + "/api/view?filename=clip.mp4&type=output") as r:
            assert r.status == 200 and r.headers["Content-Length"] == "300000"
        async with s.get(gate.url + "/view?filename=clip.mp4&type=output") as r:
            assert r.status == 200 and len(await r.read()) == 300_000
        async with s.head(gate.url + "/api/system_stats") as r:
            length = r.headers["Content-Length"]
        async with s.get(gate.url + "/api/system_stats") as r:
            assert length == str(len(await r.read()))
