"""Who is calling: a token from ``Authorization: Bearer``, ``?token=`` or the session cookie."""

from __future__ import annotations

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
]

COOKIE_NAME = "wanx_session"


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
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        return Credential(cookie, Carrier.COOKIE)
    return None


def authenticate(tokens: TokenSet, credential: Credential) -> Principal | None:
    record = tokens.authenticate(credential.token)
    return Principal(record.name, record.role, credential.carrier) if record else None


def same_origin(request: web.Request) -> bool:
    """Origin (or, without it, Referer) names the host the browser sent this request to."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False
    return urlsplit(source).netloc.lower() == request.headers.get("Host", "").lower()
