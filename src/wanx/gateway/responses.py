"""The gateway's own answers: ``{"error": {"code", "message"}}`` with the right status and headers."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

__all__ = ["error_response"]


def error_response(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)
