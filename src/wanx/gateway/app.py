"""The gateway application: auth and policy in middleware, then extra routes, then the streaming proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import aiohttp
from aiohttp import web

from wanx.gateway import checks, login
from wanx.gateway.audit import AuditLine, AuditSink, flush_periodically, write_audit
from wanx.gateway.auth import PRINCIPAL_KEY, Carrier, Principal, authenticate, find_credential, same_origin
from wanx.gateway.graph_policy import check_prompt_body
from wanx.gateway.health import healthz, readyz
from wanx.gateway.limits import JobLimiter, RateLimiter
from wanx.gateway.metrics import Metrics
from wanx.gateway.paths import CanonicalPath, canonical_path, split_target, strip_token_query
from wanx.gateway.policy import Check, Decision, Policy, load_policy
from wanx.gateway.proxy import STREAMED_KEY, forward_headers, new_upstream_session, proxy_http, relay_websocket
from wanx.gateway.responses import error_response
from wanx.gateway.settings import GatewaySettings
from wanx.gateway.state import POOL_KEY, SESSION_KEY, STATE_KEY, GatewayState
from wanx.gateway.tokens import Role, TokenSet
from wanx.gateway.upstream import UpstreamPool
from wanx.jobs.service import JOBS

__all__ = ["CTX_KEY", "ExtraRoute", "GatewayRequest", "create_app", "proxy_to", "request_context"]

log = logging.getLogger(__name__)

_OPEN_ROUTES = frozenset({"healthz", "readyz", "login", "login_submit", "logout", "logout_post"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
INTERNAL_LOGS_MESSAGE = "Server logs are shown to administrators only. Ask yours for the log of this job."


@dataclass
class GatewayRequest:
    """What the middleware learned about a request, for the handlers after it (and the audit line)."""

    principal: Principal
    path: CanonicalPath
    query: str
    decision: Decision
    prompt_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """Path and query to send upstream: canonical spelling, no token."""
        return self.path.forward + (f"?{self.query}" if self.query else "")


CTX_KEY = web.RequestKey("wanx_gateway_request", GatewayRequest)
Handler = Callable[[web.Request, GatewayRequest], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class ExtraRoute:
    """A handler mounted ahead of the proxy, matched on the canonical path (both spellings alike).

    ``path`` is written without /api, with ``{name}`` for one segment: ``/history/{prompt_id}``.
    """

    method: str
    path: str
    handler: Handler
    _want: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_want", tuple(s for s in self.path.split("/") if s))  # split once, not per request

    @property
    def shape(self) -> tuple[int, str | None]:
        """Segment count and first segment (None when that is a parameter): what a path must share to match."""
        first = self._want[0] if self._want else None
        return len(self._want), (None if first is None or first.startswith("{") else first)

    def match(self, method: str, path: CanonicalPath) -> dict[str, str] | None:
        if method != self.method and not (method == "HEAD" and self.method == "GET"):
            return None
        want = self._want
        if len(want) != len(path.segments):
            return None
        params: dict[str, str] = {}
        for w, got in zip(want, path.segments, strict=True):
            if w.startswith("{") and w.endswith("}"):
                params[w[1:-1]] = got
            elif w != got:
                return None
        return params


def request_context(request: web.Request) -> GatewayRequest:
    return request[CTX_KEY]


def _wants_html(request: web.Request) -> bool:
    return (
        request.method in ("GET", "HEAD")
        and "text/html" in request.headers.get("Accept", "")
        and request.headers.get("Upgrade", "").lower() != "websocket"
    )


def _unauthenticated(request: web.Request, reason: str) -> web.StreamResponse:
    if _wants_html(request):
        raw_path, raw_query = split_target(request.raw_path)
        target = canonical_path(raw_path)
        query = strip_token_query(raw_query)
        next_path = (target.forward if target else "/") + (f"?{query}" if query else "")
        response = web.Response(status=302, headers={"Location": login.login_url(next_path)})
        if request.cookies.get("wanx_session"):
            response.del_cookie("wanx_session", path="/")
        return response
    if reason == "missing":
        message = "no credentials: send Authorization: Bearer <token>, ?token=<token>, or sign in at /login"
        challenge = 'Bearer realm="wanx"'
    else:
        message = "the token is not valid (unknown or revoked); ask an administrator for a new one"
        challenge = 'Bearer realm="wanx", error="invalid_token"'
    return error_response(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def _bytes_out(request: web.Request, response: web.StreamResponse | None) -> int:
    """Body bytes sent (streamed answers, as far as they went) or about to be sent (whole answers, which
    aiohttp writes after the middleware)."""
    if response is None:
        return 0
    if response.prepared:
        streamed = request.get(STREAMED_KEY)
        return streamed.bytes_out if streamed is not None else response.body_length
    body = response.body if isinstance(response, web.Response) else None
    return len(body) if isinstance(body, bytes | bytearray) else 0


def _is_state_changing(request: web.Request) -> bool:
    return request.method not in _SAFE_METHODS or request.headers.get("Upgrade", "").lower() == "websocket"


@web.middleware
async def gateway_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Authenticate, decide by policy, then run the handler; record metrics and one audit line."""
    state = request.app[STATE_KEY]
    started = time.perf_counter()
    route_name = request.match_info.route.name
    if route_name in _OPEN_ROUTES:
        answer = await handler(request)
        state.metrics.observe(route_name, request.method, answer.status, time.perf_counter() - started)
        return answer
    principal: Principal | None = None
    ctx: GatewayRequest | None = None
    label = "unauthenticated"
    reason: str | None = None
    response: web.StreamResponse | None = None
    try:
        response, principal, ctx, reason = await _admit(request, state)
        if ctx is not None:
            label = ctx.decision.label
        if response is None:
            response = await handler(request)
        return response
    finally:
        status = response.status if response is not None else 500
        elapsed = time.perf_counter() - started
        state.metrics.observe(label, request.method, status, elapsed)
        if state.settings.audit:
            path = ctx.path if ctx else canonical_path(request.raw_path.partition("?")[0])
            write_audit(
                AuditLine(
                    token=principal.name if principal else None,
                    role=str(principal.role) if principal else None,
                    method=request.method,
                    path=(path.forward if path else "<unreadable>"),
                    status=status,
                    bytes=_bytes_out(request, response),
                    bytes_in=request.content.total_bytes,
                    duration_ms=round(elapsed * 1000, 2),
                    remote=request.remote,
                    prompt_id=ctx.prompt_id if ctx else None,
                    reason=reason,
                ),
                stream=request.app[AUDIT_KEY].stream,
            )


async def _admit(
    request: web.Request, state: GatewayState
) -> tuple[web.StreamResponse | None, Principal | None, GatewayRequest | None, str | None]:
    credential = find_credential(request)
    if credential is None:
        state.metrics.auth_failures["missing"] += 1
        return _unauthenticated(request, "missing"), None, None, "no credentials"
    principal = authenticate(state.tokens, credential)
    if principal is None:
        state.metrics.auth_failures["invalid"] += 1
        return _unauthenticated(request, "invalid"), None, None, "invalid token"
    request[PRINCIPAL_KEY] = principal
    raw_path, raw_query = split_target(request.raw_path)
    path = canonical_path(raw_path)
    if path is None:
        message = f"{request.method}: the request path cannot be read unambiguously (encoded dots, double encoding)"
        return error_response(400, "path_invalid", message), principal, None, "unreadable path"
    decision = state.policy.decide(principal.role, request.method, path)
    ctx = GatewayRequest(principal, path, strip_token_query(raw_query), decision, params=dict(decision.params))
    request[CTX_KEY] = ctx
    if principal.carrier is Carrier.COOKIE and _is_state_changing(request) and not same_origin(request):
        state.metrics.auth_failures["cross_site"] += 1
        message = f"{request.method} {path.forward}: refused, the Origin header does not name this site"
        return error_response(403, "cross_site_request", message), principal, ctx, "cross-site"
    if not decision.allowed:
        message = f"{request.method} {path.forward}: not allowed for role {principal.role}"
        return error_response(403, "route_forbidden", message), principal, ctx, "policy"
    return None, principal, ctx, None


AUDIT_KEY = web.AppKey("wanx_gateway_audit_sink", AuditSink)


def _proto(request: web.Request, state: GatewayState) -> str:
    return "https" if login.is_secure(request, state) else "http"


async def proxy_to(request: web.Request, base: Any, target: str, **kwargs: Any) -> web.StreamResponse:
    """Forward ``request`` to ``base`` + ``target`` (HTTP or WebSocket); for extra handlers."""
    state = request.app[STATE_KEY]
    headers = forward_headers(request, proto=_proto(request, state))
    if request.headers.get("Upgrade", "").lower() == "websocket" and request.method == "GET":
        return await relay_websocket(request, request.app[SESSION_KEY], base, target, headers=headers)
    return await proxy_http(request, request.app[POOL_KEY], base, target, headers=headers, **kwargs)


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(request: web.Request, limit: int) -> web.Response:
    return error_response(
        413, "body_too_large", f"{request.method} {request.path}: body is over the limit of {limit} bytes"
    )


async def _queued_prompt_ids(request: web.Request) -> set[str] | None:
    state = request.app[STATE_KEY]
    if JOBS in request.app:
        return await request.app[JOBS].open_ids()
    try:
        async with request.app[SESSION_KEY].get(state.settings.upstream_url / "queue") as upstream:
            data = await upstream.json()
    except (aiohttp.ClientError, ValueError, OSError):
        return None
    items = [*data.get("queue_running", []), *data.get("queue_pending", [])]
    return {str(item[1]) for item in items if isinstance(item, list) and len(item) > 1}


async def _submit_prompt(request: web.Request, ctx: GatewayRequest) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    limit = state.settings.max_prompt_bytes
    body = await _read_limited(request, limit)
    if body is None:
        return _too_large(request, limit)
    if ctx.principal.role is not Role.ADMIN:
        refusal, _ = check_prompt_body(body, state.policy.prompt)
        if refusal is not None:
            payload: dict[str, Any] = {"code": refusal.code, "message": refusal.message}
            if refusal.node_id is not None:
                payload.update(node_id=refusal.node_id, class_type=refusal.class_type)
            return web.json_response({"error": payload}, status=refusal.status)
    key = ctx.principal.name
    wait = state.rate.take(key)
    if wait:
        state.metrics.limited["rate"] += 1
        return error_response(
            429,
            "rate_limited",
            f"POST /prompt: token {key!r} is over {state.settings.prompt_rate_per_minute:g} jobs per minute; "
            f"retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    if state.jobs.full(key):
        queued = await _queued_prompt_ids(request)
        if queued is not None:
            state.jobs.prune(key, queued)
        if state.jobs.full(key):
            state.metrics.limited["queued"] += 1
            return error_response(
                429,
                "too_many_queued",
                f"POST /prompt: token {key!r} already has {state.jobs.count(key)} jobs queued "
                f"(limit {state.jobs.max_queued}); wait for some to finish",
                headers={"Retry-After": "10"},
            )

    def remember(payload: bytes) -> None:
        try:
            prompt_id = json.loads(payload).get("prompt_id")
        except (ValueError, AttributeError):
            return
        if isinstance(prompt_id, str):
            ctx.prompt_id = prompt_id
            state.jobs.add(key, prompt_id)
            state.metrics.jobs[key] += 1

    if JOBS in request.app:  # the journal answers (docs/jobs.md)
        from wanx.jobs.gateway import submit_prompt

        answer = await submit_prompt(request, body)
        if answer.status == 200 and isinstance(answer.body, bytes):
            remember(answer.body)
        return answer
    return await proxy_to(request, state.settings.upstream_url, ctx.target, body=body, on_body=remember)


async def _checked_proxy(request: web.Request, ctx: GatewayRequest) -> web.StreamResponse:
    """Run the rule's check (if any), then forward to the configured upstream."""
    state = request.app[STATE_KEY]
    base = state.settings.upstream_url
    check = ctx.decision.check
    if check is Check.NO_PATH_TYPE and (problem := checks.path_type_problem(request.query)):
        return error_response(403, "path_query_refused", f"GET {ctx.path.forward}: {problem}")
    if check is Check.USERDATA_WORKFLOWS and (
        problem := checks.userdata_problem(ctx.decision.params, state.policy.userdata_folders)
    ):
        return error_response(403, "userdata_refused", f"{request.method} {ctx.path.forward}: {problem}")
    if check is Check.NO_CLEAR:
        body = await _read_limited(request, 1 << 20)
        if body is None:
            return _too_large(request, 1 << 20)
        if problem := checks.clear_problem(body):
            return error_response(403, "clear_refused", f"POST {ctx.path.forward}: {problem}")
        return await proxy_to(request, base, ctx.target, body=body)
    upload_limit = state.settings.max_upload_bytes
    if request.content_length is not None and request.content_length > upload_limit:
        return _too_large(request, upload_limit)
    return await proxy_to(request, base, ctx.target, body_limit=upload_limit)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    """The catch-all: built-in answers, then extra routes, then the proxy."""
    ctx = request[CTX_KEY]
    state = request.app[STATE_KEY]
    method = "GET" if request.method == "HEAD" else request.method
    if ctx.path.segments == ("metrics",) and not ctx.path.api and method == "GET":
        return web.Response(text=state.metrics.render(), content_type="text/plain", charset="utf-8")
    if ctx.decision.answer == "internal_logs":
        return web.json_response(INTERNAL_LOGS_MESSAGE)
    for route in request.app[EXTRA_KEY]:
        params = route.match(request.method, ctx.path)
        if params is not None:
            ctx.params = params
            answer: web.StreamResponse = await route.handler(request, ctx)
            return answer
    if method == "POST" and ctx.decision.label == "/prompt":
        return await _submit_prompt(request, ctx)
    return await _checked_proxy(request, ctx)


EXTRA_KEY = web.AppKey("wanx_gateway_extra_routes", tuple)


def create_app(
    settings: GatewaySettings,
    *,
    extra_routes: Sequence[ExtraRoute] = (),
    policy: Policy | None = None,
    audit_stream: TextIO | None = None,
) -> web.Application:
    """Build the gateway for ``settings``; ``extra_routes`` are tried before the proxy (see docs/gateway.md)."""
    app = web.Application(
        middlewares=[gateway_middleware], client_max_size=1 << 20, handler_args={"max_field_size": 16384}
    )
    app[STATE_KEY] = GatewayState(
        settings=settings,
        policy=policy or load_policy(settings.policy_file),
        tokens=TokenSet(settings.tokens_file, admin_token=settings.admin_token.value if settings.admin_token else None),
        metrics=Metrics(),
        rate=RateLimiter(settings.prompt_rate_per_minute, settings.prompt_burst),
        jobs=JobLimiter(settings.max_queued_per_token),
    )
    app[EXTRA_KEY] = tuple(extra_routes)
    if settings.journal is not None:
        from wanx.jobs.gateway import mount_jobs  # the job system builds on the gateway

        app[EXTRA_KEY] += mount_jobs(app, settings)
    app[AUDIT_KEY] = AuditSink(audit_stream)
    app.router.add_get("/healthz", healthz, name="healthz", allow_head=True)
    app.router.add_get("/readyz", readyz, name="readyz", allow_head=True)
    app.router.add_get("/login", login.login_form, name="login", allow_head=True)
    app.router.add_post("/login", login.login_submit, name="login_submit")
    app.router.add_get("/logout", login.logout, name="logout")
    app.router.add_post("/logout", login.logout, name="logout_post")
    app.router.add_route("*", "/{tail:.*}", _dispatch, name="proxy")

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        app[SESSION_KEY] = new_upstream_session(read_timeout_s=settings.upstream_timeout_s * 10)
        app[POOL_KEY] = UpstreamPool(
            read_timeout_s=settings.upstream_timeout_s * 10, send_timeout_s=settings.upstream_timeout_s * 2
        )
        flusher = asyncio.create_task(flush_periodically(app[AUDIT_KEY]))
        yield
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        await app[SESSION_KEY].close()
        app[POOL_KEY].close()

    app.cleanup_ctx.append(upstream_session)
    return app
