"""Client websockets on the gateway: each job's events go only to the socket of the client that owns it."""

from __future__ import annotations

import contextlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from wanx.jobs.model import Job

__all__ = ["ClientSocket", "EventHub", "status_message"]

log = logging.getLogger(__name__)


def status_message(queue_remaining: int, sid: str | None = None) -> dict[str, Any]:
    """ComfyUI's ``status`` event."""
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return {"type": "status", "data": data}


@dataclass(frozen=True, slots=True, eq=False)
class ClientSocket:
    client_id: str
    owner: str
    ws: web.WebSocketResponse


class EventHub:
    """Sockets by ``clientId``. A job's events reach a socket only if both its client id and its owner match."""

    def __init__(self) -> None:
        self._sockets: dict[str, list[ClientSocket]] = defaultdict(list)

    def add(self, sock: ClientSocket) -> None:
        self._sockets[sock.client_id].append(sock)

    def remove(self, sock: ClientSocket) -> None:
        peers = self._sockets.get(sock.client_id, [])
        if sock in peers:
            peers.remove(sock)
        if not peers:
            self._sockets.pop(sock.client_id, None)

    def _targets(self, job: Job) -> list[ClientSocket]:
        if not job.client_id:
            return []
        return [s for s in self._sockets.get(job.client_id, []) if s.owner == job.owner]

    async def publish(self, job: Job, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        for sock in self._targets(job):
            await self._send(sock, text)

    async def publish_bytes(self, job: Job, payload: bytes) -> None:
        for sock in self._targets(job):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await sock.ws.send_bytes(payload)

    async def broadcast_status(self, queue_remaining: int) -> None:
        text = json.dumps(status_message(queue_remaining))
        for peers in list(self._sockets.values()):
            for sock in list(peers):
                await self._send(sock, text)

    async def close_all(self) -> None:
        for peers in list(self._sockets.values()):
            for sock in list(peers):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await sock.ws.close(code=1001, message=b"gateway shutting down")

    @staticmethod
    async def _send(sock: ClientSocket, text: str) -> None:
        try:
            await sock.ws.send_str(text)
        except (ConnectionError, RuntimeError) as e:
            log.debug("client socket gone: %s", e, extra={"event": "jobs.ws_send_failed"})
