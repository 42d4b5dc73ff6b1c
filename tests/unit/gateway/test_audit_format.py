"""The hand-built audit line is exactly what json.dumps would write, for every kind of field value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from wanx.gateway.audit import AuditLine, fixed_fields, format_audit, format_fast

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest.mark.parametrize(
    "line",
    [
        AuditLine("ops", "admin", "GET", "/api/view", 200, 12, 0, 1.25, "127.0.0.1"),
        AuditLine(None, None, "POST", '/a"b\\c\n\u00e9\u2028\x01', 401, 0, 7, 0.0, None, reason="no credentials"),
        AuditLine("t\u00f6k", "user", "GET", "/x", 502, 1 << 40, 3, 1e-05, "::1", prompt_id="p-1", reason=None),
    ],
)
def test_format_matches_json_dumps(line: AuditLine) -> None:
    record = {"ts": "2026-01-02T03:04:05.678+00:00", "event": "gateway.request"}
    record.update((name, getattr(line, name)) for name in line.__slots__)
    assert format_audit(line, now=NOW) == json.dumps(record, ensure_ascii=False) + "\n"
    assert json.loads(format_audit(line, now=NOW))["path"] == line.path


def test_timestamp_is_now_in_milliseconds() -> None:
    before = datetime.now(UTC)
    line = AuditLine("ops", "admin", "GET", "/x", 200, 0, 0, 0.1, None)
    ts = datetime.fromisoformat(json.loads(format_audit(line))["ts"])
    after = datetime.now(UTC)
    assert ts.microsecond % 1000 == 0
    assert before - timedelta(milliseconds=1) <= ts <= after


@pytest.mark.parametrize(
    "line",
    [
        AuditLine("ops", "admin", "GET", "/api/view", 200, 12, 0, 1.25, "127.0.0.1"),
        AuditLine("t\u00f6k", "user", "HEAD", '/a"b\\c', 304, 0, 0, 1e-05, None),
    ],
)
def test_fast_format_matches(line: AuditLine) -> None:
    fixed = fixed_fields(line.token, line.role, line.method, line.path)
    fast = format_fast(fixed, line.status, line.bytes, line.duration_ms, line.remote)
    slow = format_audit(line)
    assert json.loads(fast) | {"ts": 0} == json.loads(slow) | {"ts": 0}
    assert fast.partition(", ")[2] == slow.partition(", ")[2]  # byte for byte after the timestamp
