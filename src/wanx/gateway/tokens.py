"""Access tokens: random, shown once, stored only as SHA-256 hashes with a name and a role.

SHA-256 without salt or stretching is enough here because every token is 256 bits from ``secrets``:
nothing can be guessed or precomputed, so a slow password hash would only cost time per request.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from wanx.errors import TokenError, TokensFileError
from wanx.fsutil import atomic_write

__all__ = [
    "Role",
    "TokenRecord",
    "TokenSet",
    "add_token",
    "hash_token",
    "load_tokens",
    "match_token",
    "new_token",
    "revoke_token",
]

TOKEN_BYTES = 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    name: str
    role: Role
    sha256: str
    created: str


def new_token() -> str:
    """A fresh url-safe token carrying 256 random bits (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def match_token(records: Iterable[TokenRecord], token: str) -> TokenRecord | None:
    """The record whose hash matches ``token``; every record is compared, in constant time each."""
    digest = hash_token(token)
    found: TokenRecord | None = None
    for record in records:
        if hmac.compare_digest(record.sha256, digest):
            found = record
    return found


def _parse(path: Path, text: str) -> tuple[TokenRecord, ...]:
    try:
        data = json.loads(text) if text.strip() else {"version": 1, "tokens": []}
    except json.JSONDecodeError as exc:
        raise TokensFileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("tokens"), list):
        raise TokensFileError(f'{path}: expected {{"version": 1, "tokens": [...]}}')
    records = []
    for index, item in enumerate(data["tokens"]):
        try:
            record = TokenRecord(
                name=str(item["name"]),
                role=Role(item["role"]),
                sha256=str(item["sha256"]),
                created=str(item["created"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TokensFileError(
                f"{path}: token #{index + 1}: {exc!r} (expected name, role, sha256, created)"
            ) from exc
        if not re.fullmatch(r"[0-9a-f]{64}", record.sha256):
            raise TokensFileError(f"{path}: token {record.name!r}: sha256 must be 64 lowercase hex characters")
        records.append(record)
    return tuple(records)


def load_tokens(path: Path) -> tuple[TokenRecord, ...]:
    """Read the tokens file; a missing file means no tokens."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise TokensFileError(f"{path}: cannot read the tokens file ({exc.strerror})") from exc
    return _parse(path, text)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise writers; the file itself is created exclusively at 0600 so it is never world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    lock = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def _write(path: Path, records: Iterable[TokenRecord]) -> None:
    body = {"version": 1, "tokens": [{**asdict(r), "role": str(r.role)} for r in records]}
    with atomic_write(path, mode=0o600) as fh:
        fh.write(json.dumps(body, indent=2) + "\n")  # type: ignore[call-overload]


def add_token(path: Path, *, name: str, role: Role) -> str:
    """Create a token called ``name``; return it (the only time it exists in clear)."""
    if not _NAME.fullmatch(name):
        raise TokenError(
            f"token name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    with _locked(path):
        records = load_tokens(path)
        if any(r.name == name for r in records):
            raise TokenError(
                f"token name {name!r}: already exists in {path}", hint=f"Revoke it first: wanx token revoke {name}"
            )
        token = new_token()
        created = datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds")
        _write(path, (*records, TokenRecord(name, role, hash_token(token), created)))
    return token


def revoke_token(path: Path, name: str) -> TokenRecord:
    """Remove the token called ``name``; return its record."""
    with _locked(path):
        records = load_tokens(path)
        gone = [r for r in records if r.name == name]
        if not gone:
            raise TokenError(f"token {name!r}: not found in {path}", hint="List the names with: wanx token list")
        _write(path, (r for r in records if r.name != name))
    return gone[0]


class TokenSet:
    """The tokens the gateway accepts: the file (re-read when it changes) plus ``WANX_TOKEN``."""

    def __init__(self, path: Path | None, *, admin_token: str | None = None, recheck_s: float = 1.0) -> None:
        self.path = path
        self.recheck_s = recheck_s
        self._extra = (TokenRecord("WANX_TOKEN", Role.ADMIN, hash_token(admin_token), "env"),) if admin_token else ()
        self._records: tuple[TokenRecord, ...] = ()
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self.generation = 0  # goes up whenever the file is read again (a token added or revoked)
        self.reload(force=True)

    def reload(self, *, force: bool = False) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < self.recheck_s:
            return
        self._checked = now
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if force or stamp != self._stamp:
            self._records = load_tokens(self.path) if stamp else ()
            self._stamp = stamp
            self.generation += 1

    def current_generation(self) -> int:
        """``generation`` after the usual check for a changed file: an answer cached under it is still good."""
        with contextlib.suppress(TokensFileError):
            self.reload()
        return self.generation

    @property
    def records(self) -> tuple[TokenRecord, ...]:
        return self._records + self._extra

    def authenticate(self, token: str) -> TokenRecord | None:
        # keep serving with the last good set while someone edits the file by hand
        with contextlib.suppress(TokensFileError):
            self.reload()
        return match_token(self.records, token)
