"""Login and logout in headless Chromium (Playwright driving Debian's /usr/bin/chromium)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.gateway.conftest import Gate, gateway_in_front

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium: apt-get install -y chromium"),
]


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    with gateway_in_front(tmp_path) as g:
        yield g


def test_login_then_logout(browser: Any, gate: Gate) -> None:
    page = browser.new_page()
    page.goto(gate.url + "/history?max_items=1")
    assert page.url == gate.url + "/login?next=%2Fhistory%3Fmax_items%3D1"

    page.fill("#token", "not-a-token")
    page.click("#submit")
    assert "not valid" in page.inner_text("#error")

    page.fill("#token", gate.user)
    page.click("#submit")
    page.wait_for_url(gate.url + "/history?max_items=1")
    cookie = next(c for c in page.context.cookies() if c["name"] == "wanx_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "wanx_session" not in page.evaluate("document.cookie")

    page.goto(gate.url + "/")
    assert "fake comfy" in page.content()
    status = page.evaluate("fetch('/api/prompt', {method: 'POST', headers: {'Content-Type': 'application/json'},"
                           " body: JSON.stringify({prompt: {'1': {class_type: 'PreviewImage', inputs: {}}}})})"
                           ".then(r => r.status)")  # fmt: skip
    assert status == 200  # a same-origin page may change state with its cookie
    ws_type = page.evaluate(
        "new Promise(ok => { const ws = new WebSocket(`ws://${location.host}/ws`);"
        " ws.onmessage = m => { ok(JSON.parse(m.data).type); ws.close(); }; ws.onerror = () => ok('error'); })"
    )
    assert ws_type == "status"

    page.goto(gate.url + "/logout")
    assert page.url.startswith(gate.url + "/login")
    page.goto(gate.url + "/")
    assert page.url.startswith(gate.url + "/login?next=")
    seen = page.request.get(gate.upstream + "/__fake/requests").text()
    assert gate.user not in seen
    page.close()


def test_cross_site_page_cannot_use_the_session(browser: Any, gate: Gate, tmp_path: Path) -> None:
    """A page on another origin posts to the gateway: the cookie is not sent and nothing is queued."""
    page = browser.new_page()
    page.goto(gate.url + "/login")
    page.fill("#token", gate.user)
    page.click("#submit")
    page.wait_for_url(gate.url + "/")
    other = gate.url.replace("127.0.0.1", "localhost")  # a different site as far as the browser knows
    page.goto(other + "/login")
    status = page.evaluate(
        f"fetch('{gate.url}/api/interrupt', {{method: 'POST', mode: 'no-cors', credentials: 'include'}})"
        ".then(r => r.type)"
    )
    assert status == "opaque"
    seen = page.request.get(gate.upstream + "/__fake/requests").text()
    assert "/api/interrupt" not in seen
    page.close()
