"""The token-auth gateway: the only thing that listens on the network, in front of ComfyUI."""

from __future__ import annotations

from wanx.gateway.app import create_app
from wanx.gateway.settings import GatewaySettings, load_settings

__all__ = ["GatewaySettings", "create_app", "load_settings"]
