"""``/healthz`` (the gateway answers) and ``/readyz`` (ComfyUI answers ``/system_stats``)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from wanx.gateway.responses import error_response
from wanx.gateway.state import SESSION_KEY, STATE_KEY

__all__ = ["healthz", "readyz"]


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    base = request.app[STATE_KEY].settings.upstream_url
    try:
        async with request.app[SESSION_KEY].get(
            base / "system_stats", timeout=aiohttp.ClientTimeout(total=3)
        ) as upstream:
            if upstream.status == 200:
                return web.json_response({"status": "ready", "upstream": str(base)})
            reason = f"answered {upstream.status}"
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        reason = f"is not answering ({type(exc).__name__})"
    return error_response(503, "upstream_not_ready", f"ComfyUI at {base} {reason}", headers={"Retry-After": "5"})
