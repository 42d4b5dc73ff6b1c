"""Settings precedence, the rate and queue limiters, metrics text and the login redirect guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanx.errors import ConfigError
from wanx.gateway.limits import JobLimiter, RateLimiter
from wanx.gateway.login import safe_next
from wanx.gateway.metrics import Metrics
from wanx.gateway.settings import MIB, load_settings


def test_precedence_defaults_env_flags() -> None:
    assert load_settings({}).upstream == "http://127.0.0.1:8188"
    env = {"WANX_GATEWAY_UPSTREAM": "http://10.0.0.2:8188/", "WANX_GATEWAY_MAX_UPLOAD_MB": "100", "WANX_TOKEN": "s3"}
    from_env = load_settings(env)
    assert (from_env.upstream, from_env.max_upload_bytes) == ("http://10.0.0.2:8188", 100 * MIB)
    assert "s3" not in repr(from_env)
    flags = load_settings(env, upstream="http://127.0.0.1:9000", listen="127.0.0.1:9", tokens_file=Path("t"))
    assert (flags.upstream, flags.listen_host, flags.listen_port) == ("http://127.0.0.1:9000", "127.0.0.1", 9)


@pytest.mark.parametrize(
    ("env", "message"),
    [({"WANX_GATEWAY_UPSTREAM": "ftp://x"}, "WANX_GATEWAY_UPSTREAM"), ({"WANX_GATEWAY_LISTEN": "8080"}, "HOST:PORT"),
     ({"WANX_GATEWAY_PROMPT_BURST": "0"}, "prompt_burst"), ({"WANX_GATEWAY_AUDIT": "maybe"}, "WANX_GATEWAY_AUDIT")],
)  # fmt: skip
def test_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_rate_limiter_bucket() -> None:
    now = [0.0]
    rate = RateLimiter(per_minute=6, burst=2, clock=lambda: now[0])
    assert [rate.take("a"), rate.take("a")] == [0, 0]
    assert rate.take("a") == 10
    assert rate.take("b") == 0
    now[0] = 10.0
    assert rate.take("a") == 0


def test_job_limiter() -> None:
    jobs = JobLimiter(max_queued=2)
    jobs.add("a", "p1")
    jobs.add("a", "p2")
    assert jobs.full("a") and not jobs.full("b")
    jobs.prune("a", ["p2", "zz"])
    assert jobs.count("a") == 1


def test_metrics_text() -> None:
    m = Metrics()
    m.observe("/prompt", "POST", 200, 0.02)
    m.observe("/prompt", "POST", 200, 3.0)
    m.jobs["alice"] += 1
    m.auth_failures["invalid"] += 2
    text = m.render()
    assert 'wanx_gateway_requests_total{route="/prompt",method="POST",status="200"} 2' in text
    assert 'wanx_gateway_request_duration_seconds_bucket{route="/prompt",le="0.025"} 1' in text
    assert 'wanx_gateway_request_duration_seconds_bucket{route="/prompt",le="+Inf"} 2' in text
    assert 'wanx_gateway_jobs_submitted_total{token="alice"} 1' in text
    assert 'wanx_gateway_auth_failures_total{reason="invalid"} 2' in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/history?x=1", "/history?x=1"), ("//evil.example/", "/"), ("/\\evil.example", "/"),
     ("https://evil.example/", "/"), ("javascript:alert(1)", "/"), ("", "/"), (None, "/"),
     ("/ok\r\nSet-Cookie: x", "/"), ("evil.example", "/")],
)  # fmt: skip
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected
