"""Every route x both spellings x carrier x token kind, through a real gateway to a real stand-in."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.integration.gateway.conftest import Gate
from tests.unit.gateway.routes import ROUTES, Route, other_spelling, spellings

pytestmark = pytest.mark.integration

GOOD_GRAPH = {"prompt": {"1": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}}
KINDS = ["none", "wrong", "revoked", "user", "admin"]
CARRIERS = ["bearer", "query", "cookie"]


def _token(gate: Gate, kind: str) -> str | None:
    return {"none": None, "wrong": "x" * 43, "revoked": gate.revoked, "user": gate.user, "admin": gate.admin}[kind]


def _body(route: Route) -> dict[str, Any]:
    if route.path.startswith("/upload/"):
        form = aiohttp.FormData()
        form.add_field("image", b"\x89PNG fake", filename="m.png", content_type="image/png")
        return {"data": form}
    if route.path == "/prompt" and route.method == "POST":
        return {"json": GOOD_GRAPH}
    if route.method in ("POST", "DELETE", "PATCH"):
        return {"json": {"delete": []}}
    return {}


async def _call(
    session: aiohttp.ClientSession, gate: Gate, method: str, path: str, carrier: str, token: str | None, **kw: Any
) -> tuple[int, dict[str, Any] | None, str]:
    headers: dict[str, str] = {}
    params: dict[str, str] = {"type": "output"} if "video" in path else {}
    params.update(kw.pop("params", {}))
    if token is not None and carrier == "bearer":
        headers["Authorization"] = f"Bearer {token}"
    elif token is not None and carrier == "query":
        params["token"] = token
    elif token is not None and carrier == "cookie":
        headers["Cookie"] = f"wanx_session={token}"
        headers["Origin"] = gate.url
    url = gate.url + path
    async with session.request(
        method, aiohttp.client.URL(url, encoded=True), headers=headers, params=params, allow_redirects=False, **kw
    ) as resp:
        text = await resp.text() if method != "HEAD" else ""
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        return resp.status, body, text


def _gateway_code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("kind", KINDS)
async def test_matrix(shared_gate: Gate, kind: str, carrier: str) -> None:
    gate = shared_gate
    token = _token(gate, kind)
    problems: list[str] = []
    async with aiohttp.ClientSession() as session:
        for route in ROUTES:
            for path in spellings(route):
                for method in [route.method, "HEAD"] if route.method == "GET" else [route.method]:
                    if route.path == "/ws":
                        continue  # the WebSocket relay has its own tests
                    status, body, text = await _call(session, gate, method, path, carrier, token, **_body(route))
                    where = f"{method} {path} [{kind}/{carrier}] -> {status} {text[:120]!r}"
                    code = _gateway_code(body)
                    if method == "HEAD" and status == 403:
                        code = "route_forbidden"  # HEAD answers carry no body to read the code from
                    if kind in ("none", "wrong", "revoked"):
                        if status != 401:
                            problems.append(where)
                    elif (
                        kind == "admin"
                        or route.user is True
                        or route.user in ("no_clear", "prompt_graph", "no_path_type")
                    ):
                        if (status in (401, 403) and code not in (None, "upstream_refused")) or status >= 500:
                            problems.append(where)
                        if (
                            route.path == "/internal/logs"
                            and kind == "admin"
                            and method == "GET"
                            and "server log" not in text
                        ):
                            problems.append(where + " (admin should see the real log)")
                    elif route.user is False:
                        if (status, code) != (403, "route_forbidden"):
                            problems.append(where)
                    elif route.user == "internal_logs":
                        if status != 200 or "server log" in text:
                            problems.append(where)
                    elif route.user == "userdata_workflows":
                        ok = "workflows%2F" in path and "comfy.settings" not in path
                        if ok == (status == 403):
                            problems.append(where)
            wrong = other_spelling(route)
            if wrong and kind == "user" and route.path != "/ws":
                status, body, _ = await _call(session, gate, route.method, wrong, carrier, token, **_body(route))
                if status != 403:
                    problems.append(f"{route.method} {wrong} [{kind}/{carrier}] -> {status}")
    assert not problems, "\n".join(problems)


async def test_tokens_never_reach_upstream(shared_gate: Gate) -> None:
    """Runs after the matrix in this module: nothing the stand-in received carries any token."""
    gate = shared_gate
    async with aiohttp.ClientSession() as session:
        for carrier in CARRIERS:
            await _call(session, gate, "GET", "/api/queue", carrier, gate.user)
            await _call(session, gate, "GET", "/view", carrier, gate.admin, params={"filename": "x.png"})
        async with session.get(gate.upstream + "/__fake/requests") as resp:
            seen = await resp.text()
    assert "/api/queue" in seen
    for secret in gate.secrets():
        assert secret not in seen
    assert "wanx_session" not in seen and "Bearer" not in seen
    assert "x" * 43 not in seen
    audit = gate.audit.getvalue()
    assert audit and not any(s in audit for s in gate.secrets())
