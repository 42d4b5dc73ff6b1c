"""What the gateway app shares between requests, under typed keys (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import web

from wanx.gateway.limits import JobLimiter, RateLimiter
from wanx.gateway.metrics import Metrics
from wanx.gateway.policy import Policy
from wanx.gateway.settings import GatewaySettings
from wanx.gateway.tokens import TokenSet
from wanx.gateway.upstream import UpstreamPool

__all__ = ["POOL_KEY", "SESSION_KEY", "STATE_KEY", "GatewayState"]


@dataclass
class GatewayState:
    settings: GatewaySettings
    policy: Policy
    tokens: TokenSet
    metrics: Metrics
    rate: RateLimiter
    jobs: JobLimiter


STATE_KEY = web.AppKey("wanx_gateway_state", GatewayState)
SESSION_KEY = web.AppKey("wanx_gateway_upstream_session", aiohttp.ClientSession)
POOL_KEY = web.AppKey("wanx_gateway_upstream_pool", UpstreamPool)  # the proxy hot path (upstream.py)
