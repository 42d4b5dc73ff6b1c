"""Which requests the lean front (front.py) answers itself, and what it sends upstream for them.

The rule is narrow on purpose: an authenticated HTTP/1.1 GET or HEAD with no body and no upgrade, a
path already in canonical form, allowed by the policy with no extra check, and not one of the
gateway's own routes (login, health, metrics, the job routes). For such a request the aiohttp app
would only forward it and stream the answer back. ``admit`` returns None for everything else, and
that request goes to the aiohttp app, which stays the reference for every other answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl

from wanx.gateway.app import ExtraRoute
from wanx.gateway.auth import Carrier, Credential, Principal, authenticate, session_cookie
from wanx.gateway.paths import CanonicalPath, plain_path, split_target, strip_token_query
from wanx.gateway.policy import Policy
from wanx.gateway.proxy import upstream_header_items
from wanx.gateway.tokens import Role, TokenSet

__all__ = ["FastContext", "Head", "LastCaller", "Plan", "admit", "has_body", "response_head"]

_OWN_ROUTES = frozenset({"healthz", "readyz", "login", "logout", "metrics"})  # answered by the gateway itself
_NOT_PASSED = frozenset({"content-length"})  # no body goes upstream on this path
_NO_BODY_STATUS = frozenset({204, 304})
_KNOWN_STATUS = frozenset(s.value for s in HTTPStatus)
_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class _Route:
    """What the policy and the extra routes say of one (role, method, path): the same for every request."""

    path: CanonicalPath
    label: str


@dataclass(frozen=True, slots=True)
class FastContext:
    """What ``admit`` needs from the gateway app, read once when the server starts."""

    @classmethod
    def of(
        cls,
        tokens: TokenSet,
        policy: Policy,
        extra_routes: Sequence[ExtraRoute],
        *,
        trust_forwarded_proto: bool,
        base_path: str,
    ) -> FastContext:
        return cls(
            tokens, policy, frozenset(r.shape for r in extra_routes), trust_forwarded_proto, base_path.rstrip("/")
        )

    tokens: TokenSet
    policy: Policy
    extra_shapes: frozenset[tuple[int, str | None]]  # ExtraRoute.shape of every extra route
    trust_forwarded_proto: bool
    base_path: str  # the upstream URL's path, without a trailing slash
    routes: dict[tuple[Role, str, str], _Route | None] = field(default_factory=dict)  # bounded cache, see _route


@dataclass(slots=True)
class LastCaller:
    """Who the last credential on one connection was: keep-alive clients send the same one every time, and
    while the token set is the same generation the answer is too (a revocation starts a new generation)."""

    credential: Credential | None = None
    principal: Principal | None = None
    generation: int = -1

    def principal_for(self, tokens: TokenSet, credential: Credential) -> Principal | None:
        generation = tokens.current_generation()
        if credential == self.credential and generation == self.generation:
            return self.principal
        principal = authenticate(tokens, credential)
        if principal is not None:
            self.credential, self.principal, self.generation = credential, principal, generation
        return principal


@dataclass(slots=True)
class Head:
    """A parsed request head: the method, the target and headers as sent (decoded with
    ``upstream.HEAD_CODEC``), and the first value of each header by lower-case name."""

    method: str
    target: str
    headers: Sequence[tuple[str, str]]
    keep_alive: bool
    first: dict[str, str]


@dataclass(slots=True)
class Plan:
    """An admitted request: who asked, what it is, and the request to send upstream."""

    principal: Principal
    path: CanonicalPath
    label: str
    method: str
    target: str
    headers: list[tuple[str, str]]
    keep_alive: bool


def _credential(first: dict[str, str], query: str) -> Credential | None:
    """The same carriers in the same order as ``auth.find_credential``; None also when a carrier is odd."""
    scheme, _, value = first.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Credential(value.strip(), Carrier.BEARER)
    if "token" in query.lower() or "%" in query:
        for key, got in parse_qsl(query, keep_blank_values=True):
            if key == "token":
                if got:
                    return Credential(got, Carrier.QUERY)
                break
    cookie = session_cookie(first.get("cookie", ""))
    return Credential(cookie, Carrier.COOKIE) if cookie else None


def admit(ctx: FastContext, head: Head, peer: str, caller: LastCaller) -> Plan | None:
    """The plan for a request the front may answer by itself, or None to hand it to the aiohttp app."""
    method = head.method
    if method not in ("GET", "HEAD") or not head.target.startswith("/") or not head.target.isascii():
        return None
    raw_path, query = split_target(head.target)
    if "#" in query:
        return None
    first = head.first
    host = first.get("host")
    if not host or "upgrade" in first or "expect" in first:  # aiohttp answers Expect: 100-continue
        return None
    credential = _credential(first, query)
    if credential is None:
        return None
    principal = caller.principal_for(ctx.tokens, credential)
    if principal is None:
        return None  # the aiohttp app answers (401 or a redirect to /login) and counts the failure
    route = _route(ctx, principal.role, method, raw_path)
    if route is None:
        return None
    proto = "http"
    if ctx.trust_forwarded_proto and first.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https":
        proto = "https"
    kept_query = strip_token_query(query)
    return Plan(
        principal=principal,
        path=route.path,
        label=route.label,
        method=method,
        target=ctx.base_path + raw_path + (f"?{kept_query}" if kept_query else ""),
        headers=upstream_header_items(head.headers, host=host, peer=peer, proto=proto, drop=_NOT_PASSED),
        keep_alive=head.keep_alive,
    )


def _route(ctx: FastContext, role: Role, method: str, raw_path: str) -> _Route | None:
    """The route when the front may forward ``raw_path`` as it is; None to leave it to the aiohttp app. Cached."""
    key = (role, method, raw_path)
    try:
        return ctx.routes[key]
    except KeyError:
        pass
    route = None
    path = plain_path(raw_path)  # already canonical, so it is forwarded exactly as sent
    if path is not None and not (not path.api and len(path.segments) == 1 and path.segments[0] in _OWN_ROUTES):
        decision = ctx.policy.decide(role, method, path)
        count = len(path.segments)
        shape = (count, path.segments[0] if count else None)
        extra = shape in ctx.extra_shapes or (count, None) in ctx.extra_shapes  # the job routes, for one
        if decision.allowed and decision.check is None and decision.answer is None and not extra:
            route = _Route(path, decision.label)
    if len(ctx.routes) >= _CACHE_SIZE:
        ctx.routes.clear()  # bounded: random paths cannot grow it without limit
    ctx.routes[key] = route
    return route


def response_head(
    status: int, reason: bytes, header_lines: bytes, *, length: int | None, chunked: bool, keep_alive: bool
) -> bytes:
    """The answer's head for the client: ``header_lines`` (already filtered, each ending in CRLF), the
    framing, and ``Connection: close`` when the front closes the connection after this answer."""
    if not reason and status in _KNOWN_STATUS:
        reason = HTTPStatus(status).phrase.encode("latin-1")
    framing = b"Content-Length: %d\r\n" % length if length is not None else b""
    if chunked and length is None:
        framing = b"Transfer-Encoding: chunked\r\n"
    close = b"" if keep_alive else b"Connection: close\r\n"
    return b"HTTP/1.1 %d %s\r\n%b%b%b\r\n" % (status, reason, header_lines, framing, close)


def has_body(status: int) -> bool:
    """Whether an answer with ``status`` carries a body (RFC 9110: not 1xx, 204 or 304)."""
    return status >= 200 and status not in _NO_BODY_STATUS
