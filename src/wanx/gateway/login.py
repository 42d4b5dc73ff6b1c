"""The login form at ``/login``: a token in, an HttpOnly SameSite=Strict session cookie out; and logout.

Cross-site forgery: the cookie is SameSite=Strict, so other sites' requests never carry it, and
state-changing cookie requests (and this form's POST) must come with an Origin naming this host.
"""

from __future__ import annotations

import html
import importlib.resources
from string import Template
from urllib.parse import quote, urlsplit

from aiohttp import web

from wanx.gateway.auth import COOKIE_NAME
from wanx.gateway.state import STATE_KEY, GatewayState

__all__ = ["is_secure", "login_form", "login_submit", "logout", "safe_next"]

_TEMPLATE = Template(
    importlib.resources.files("wanx.gateway").joinpath("templates/login.html").read_text(encoding="utf-8")
)


def safe_next(value: str | None) -> str:
    """A local path to go to after login; anything that could leave this site becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x20 or c == "\\" for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(safe_next(next_path), safe="")


def is_secure(request: web.Request, state: GatewayState) -> bool:
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return state.settings.trust_forwarded_proto and proto == "https"


def _page(next_path: str, error: str = "", status: int = 200) -> web.Response:
    error_html = f'<p class="error" id="error">{html.escape(error)}</p>' if error else ""
    body = _TEMPLATE.substitute(next=html.escape(safe_next(next_path), quote=True), error=error_html)
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "frame-ancestors 'none'",
        },
    )


async def login_form(request: web.Request) -> web.Response:
    return _page(request.query.get("next", "/"))


async def login_submit(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if source and urlsplit(source).netloc.lower() != request.headers.get("Host", "").lower():
        state.metrics.auth_failures["cross_site_login"] += 1
        return _page("/", "This sign-in came from another site and was refused.", status=403)
    form = await request.post()
    token = str(form.get("token", "")).strip()
    next_path = safe_next(str(form.get("next", "/")))
    record = state.tokens.authenticate(token) if token else None
    if record is None:
        state.metrics.auth_failures["invalid_login"] += 1
        return _page(next_path, "That token is not valid (or it was revoked).", status=401)
    response = web.Response(status=303, headers={"Location": next_path})
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=state.settings.session_max_age_s,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_secure(request, state),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/login"})
    response.del_cookie(COOKIE_NAME, path="/")
    response.headers["Cache-Control"] = "no-store"
    return response
