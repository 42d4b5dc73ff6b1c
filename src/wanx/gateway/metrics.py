"""Prometheus text exposition written by hand: a few counters and one latency histogram.

Label values are bounded: ``route`` is a policy rule label (or ``other``), never the raw path.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["Metrics"]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


@dataclass
class Metrics:
    requests: defaultdict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    latency: defaultdict[str, _Histogram] = field(default_factory=lambda: defaultdict(_Histogram))
    jobs: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    auth_failures: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    limited: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    front: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))  # "fast", "handed_off" (front.py)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests[(route, method, status)] += 1
        self.latency[route].observe(seconds)

    def render(self) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        family("wanx_gateway_requests_total", "counter", "Requests answered, by route, method and status.")
        for (route, method, status), n in sorted(self.requests.items()):
            out.append(f'wanx_gateway_requests_total{{route="{_esc(route)}",method="{method}",status="{status}"}} {n}')
        family("wanx_gateway_request_duration_seconds", "histogram", "Time to answer a request, by route.")
        for route, hist in sorted(self.latency.items()):
            running = 0
            label = f'route="{_esc(route)}"'
            for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f'wanx_gateway_request_duration_seconds_bucket{{{label},le="{le}"}} {running}')
            out.append(f"wanx_gateway_request_duration_seconds_sum{{{label}}} {hist.total:.6f}")
            out.append(f"wanx_gateway_request_duration_seconds_count{{{label}}} {running}")
        family("wanx_gateway_jobs_submitted_total", "counter", "Jobs ComfyUI accepted through POST /prompt, by token.")
        for token, n in sorted(self.jobs.items()):
            out.append(f'wanx_gateway_jobs_submitted_total{{token="{_esc(token)}"}} {n}')
        family("wanx_gateway_auth_failures_total", "counter", "Requests refused for missing or invalid credentials.")
        for reason, n in sorted(self.auth_failures.items()):
            out.append(f'wanx_gateway_auth_failures_total{{reason="{reason}"}} {n}')
        family("wanx_gateway_rate_limited_total", "counter", "POST /prompt answered 429, by limit.")
        for limit, n in sorted(self.limited.items()):
            out.append(f'wanx_gateway_rate_limited_total{{limit="{limit}"}} {n}')
        family(
            "wanx_gateway_front_total",
            "counter",
            "Requests the lean front answered itself (fast) and connections it handed to aiohttp (handed_off).",
        )
        for kind, n in sorted(self.front.items()):
            out.append(f'wanx_gateway_front_total{{kind="{kind}"}} {n}')
        return "\n".join(out) + "\n"
