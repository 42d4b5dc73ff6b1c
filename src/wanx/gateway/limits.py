"""Per-token limits on ``POST /prompt``: a token bucket for the rate and a cap on queued jobs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["JobLimiter", "RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """``per_minute`` on average, bursts of up to ``burst``; ``take`` returns seconds to wait or 0."""

    per_minute: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key: str) -> int:
        now = self.clock()
        rate = self.per_minute / 60.0
        bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / rate))


@dataclass
class JobLimiter:
    """Prompt ids each token has queued; pruned against ComfyUI's ``/queue`` when the cap is reached."""

    max_queued: int
    _jobs: dict[str, set[str]] = field(default_factory=dict)

    def count(self, key: str) -> int:
        return len(self._jobs.get(key, ()))

    def prune(self, key: str, still_queued: Iterable[str]) -> None:
        live = set(still_queued)
        self._jobs[key] = {p for p in self._jobs.get(key, set()) if p in live}

    def full(self, key: str) -> bool:
        return self.count(key) >= self.max_queued

    def add(self, key: str, prompt_id: str) -> None:
        self._jobs.setdefault(key, set()).add(prompt_id)
