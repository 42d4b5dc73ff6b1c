"""Audit trail: one JSON object per request on stdout, naming the token, never containing it."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["AuditLine", "AuditSink", "write_audit"]


@dataclass(frozen=True, slots=True)
class AuditLine:
    token: str | None
    role: str | None
    method: str
    path: str
    status: int
    bytes: int
    bytes_in: int
    duration_ms: float
    remote: str | None
    prompt_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AuditSink:
    """Where audit lines go: ``stream``, or whatever ``sys.stdout`` is at the time of writing."""

    stream: TextIO | None = None


def write_audit(line: AuditLine, *, stream: TextIO | None = None) -> None:
    record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": "gateway.request", **asdict(line)}
    out = stream or sys.stdout
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
