"""Mount the job system in the gateway: journal-backed job routes, and ``POST /prompt`` into the journal.

The gateway's middleware has already authenticated the caller and applied the route policy; jobs are
owned by the token's name, and admins see everyone's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from wanx.gateway.app import ExtraRoute, GatewayRequest, Handler
from wanx.gateway.auth import PRINCIPAL_KEY
from wanx.gateway.settings import GatewaySettings
from wanx.gateway.tokens import Role
from wanx.jobs.api import PATH_PARAMS, ROUTES, accept_prompt
from wanx.jobs.runner import RunnerSettings
from wanx.jobs.schema_check import schema_validator
from wanx.jobs.service import JOBS, JobSettings, Viewer, jobs_context

__all__ = ["default_journal", "gateway_viewer", "mount_jobs", "submit_prompt"]


def default_journal(environ: Mapping[str, str]) -> Path:
    """``$WANX_DATA_DIR/gateway/jobs.sqlite3``, else ``${XDG_STATE_HOME:-~/.local/state}/wanx/jobs.sqlite3``."""
    if environ.get("WANX_DATA_DIR"):
        return Path(environ["WANX_DATA_DIR"]) / "gateway" / "jobs.sqlite3"
    state = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "wanx" / "jobs.sqlite3"


def gateway_viewer(request: web.Request) -> Viewer:
    principal = request[PRINCIPAL_KEY]
    return Viewer(owner=principal.name, sees_all=principal.role is Role.ADMIN)


def _extra(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Handler:
    async def handle(request: web.Request, ctx: GatewayRequest) -> web.StreamResponse:
        request[PATH_PARAMS] = ctx.params
        return await handler(request)

    return handle


def mount_jobs(app: web.Application, settings: GatewaySettings) -> tuple[ExtraRoute, ...]:
    """Start the job service with ``app``; return the routes the gateway tries before its proxy."""
    if settings.journal is None:
        return ()
    jobs = JobSettings(journal=settings.journal, upstreams=settings.backends, runner=RunnerSettings())
    app.cleanup_ctx.append(jobs_context(jobs, validate=schema_validator(), viewer=gateway_viewer))
    routes = [(method, path, handler) for method, path, handler in ROUTES if (method, path) != ("POST", "/prompt")]
    return tuple(ExtraRoute(method, path, _extra(handler)) for method, path, handler in routes)


async def submit_prompt(request: web.Request, body: bytes) -> web.Response:
    """``POST /prompt`` after the gateway's own checks (size, graph policy, rate): validate and journal it."""
    service = request.app[JOBS]
    parsed: Any
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return await accept_prompt(service, service.viewer(request), parsed)
