"""Who is calling: a token from ``Authorization: Bearer``, ``?token=`` or the session cookie."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from aiohttp import web

from wanx.gateway.tokens import Role, TokenSet

__all__ = [
    "COOKIE_NAME",
    "Carrier",
    "Credential",
    "Principal",
    "authenticate",
    "find_credential",
    "principal_of",
    "same_origin",
    "session_cookie",
]

COOKIE_NAME = "wanx_session"
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")  # what 'wanx token new' makes (url-safe base64)


class Carrier(StrEnum):
    BEARER = "bearer"
    QUERY = "query"
    COOKIE = "cookie"


@dataclass(frozen=True, slots=True)
class Credential:
    token: str
    carrier: Carrier

    def __repr__(self) -> str:  # never show the token
        return f"Credential(carrier={self.carrier})"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: the token's name and role, and how the token came."""

    name: str
    role: Role
    carrier: Carrier


PRINCIPAL_KEY = web.RequestKey("wanx_principal", Principal)


def principal_of(request: web.Request) -> Principal:
    """The principal the gateway middleware authenticated for this request."""
    return request[PRINCIPAL_KEY]


def find_credential(request: web.Request) -> Credential | None:
    """The first carrier present: Bearer header, then ``?token=``, then the session cookie."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Credential(value.strip(), Carrier.BEARER)
    query = request.query.get("token") if "token" in request.query_string.lower() else None  # skip parsing
    if query:
        return Credential(query, Carrier.QUERY)
    cookie = session_cookie(request.headers.get("Cookie", ""))
    if cookie:
        return Credential(cookie, Carrier.COOKIE)
    return None


def session_cookie(header: str) -> str | None:
    """The session token in a Cookie header, read strictly: ``name=value`` pairs split on ';', the session
    cookie there exactly once as ``wanx_session=<token>``. Any other mention of the name (a space before
    '=', after a comma, quoted, twice) is no credential: cookie parsers disagree on such headers, and the
    gateway's two request paths, and the filter that keeps the cookie from ComfyUI, must read it one way."""
    if COOKIE_NAME not in header:
        return None
    found: list[str] = []
    for pair in header.split(";"):
        pair = pair.strip()
        if COOKIE_NAME in pair:
            name, _, value = pair.partition("=")
            if name != COOKIE_NAME or not _TOKEN.fullmatch(value):
                return None
            found.append(value)
    return found[0] if len(found) == 1 else None


def authenticate(tokens: TokenSet, credential: Credential) -> Principal | None:
    record = tokens.authenticate(credential.token)
    return Principal(record.name, record.role, credential.carrier) if record else None


def same_origin(request: web.Request) -> bool:
    """Origin (or, without it, Referer) names the host the browser sent this request to."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False
    return urlsplit(source).netloc.lower() == request.headers.get("Host", "").lower()
