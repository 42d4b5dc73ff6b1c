"""Request-path normalisation: one canonical form that the policy checks and the proxy forwards.

ComfyUI serves every route as ``/x`` and ``/api/x``; aiohttp resolves ``..`` and ``//`` its own way.
The gateway decodes each segment once, drops ``.`` and empty segments, resolves literal ``..``, and
refuses what it cannot read unambiguously (encoded dots, double encoding, NUL, backslashes) and any
segment that decodes to a climb (``..%2F``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

__all__ = ["CanonicalPath", "canonical_path", "plain_path", "split_target", "strip_token_query"]

_SAFE = "!$&'()*+,;=:@~-._"
# No '%', no empty, '.' or '..' segment, no trailing slash: already canonical.
_PLAIN = re.compile(r"(?:/(?!\.{1,2}(?:/|$))[A-Za-z0-9_.~!$&'()*+,;=:@-]+)+")


@dataclass(frozen=True)
class CanonicalPath:
    """``segments`` without the ``/api`` prefix; ``api`` says which spelling was used."""

    segments: tuple[str, ...]
    api: bool

    @property
    def key(self) -> str:
        """The route without the /api prefix, for humans and logs (segments joined with '/')."""
        return "/" + "/".join(self.segments)

    @functools.cached_property
    def forward(self) -> str:
        """The path to send upstream: the same spelling, each segment re-encoded (a '/' inside stays %2F)."""
        segments = ("api", *self.segments) if self.api else self.segments
        return "/" + "/".join(quote(s, safe=_SAFE) for s in segments)


def split_target(target: str) -> tuple[str, str]:
    """The raw path and the raw query of a request target, each exactly as the client sent it."""
    path, _, query = target.partition("?")
    return path, query


def plain_path(raw_path: str) -> CanonicalPath | None:
    """The path when it is already canonical (nothing to decode or resolve); ``None`` otherwise."""
    if raw_path == "/":
        return CanonicalPath((), False)
    if not _PLAIN.fullmatch(raw_path):
        return None
    parts = tuple(raw_path[1:].split("/"))
    api = parts[0] == "api"
    path = CanonicalPath(parts[1:] if api else parts, api)
    path.__dict__["forward"] = raw_path  # fills the cached property: quoting a plain path gives it back unchanged
    return path


def canonical_path(raw_path: str) -> CanonicalPath | None:
    """Normalise the raw request path (no query); ``None`` when it cannot be read unambiguously."""
    if not raw_path.startswith("/"):
        return None
    if (plain := plain_path(raw_path)) is not None:  # the common case
        return plain
    out: list[str] = []
    for raw in raw_path.split("/"):
        if raw in ("", "."):
            continue
        if raw == "..":
            if not out:
                return None
            out.pop()
            continue
        try:
            seg = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return None
        if seg in (".", "..") or "%" in seg or "\x00" in seg or "\\" in seg or any(ord(c) < 0x20 for c in seg):
            return None
        if ".." in seg.split("/"):  # '..%2F..%2Fx': a climb that ComfyUI would see once it decodes the name
            return None
        out.append(seg)
    api = bool(out) and out[0] == "api"
    return CanonicalPath(tuple(out[1:]) if api else tuple(out), api)


def strip_token_query(raw_query: str) -> str:
    """The raw query string without any ``token`` parameter; other parameters keep their exact bytes."""
    if not raw_query or ("token" not in raw_query.lower() and "%" not in raw_query):
        return raw_query
    kept = [p for p in raw_query.split("&") if p and unquote(p.partition("=")[0]).strip().lower() != "token"]
    return "&".join(kept)
