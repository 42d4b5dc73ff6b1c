"""The few ComfyUI calls a runner makes, each turning "no answer" into ``BackendUnavailable``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from wanx.errors import BackendUnavailable

__all__ = ["Backend", "QueueView", "SubmitAnswer"]


@dataclass(frozen=True, slots=True)
class QueueView:
    running: frozenset[str]
    pending: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.running and not self.pending

    def __contains__(self, prompt_id: object) -> bool:
        return prompt_id in self.running or prompt_id in self.pending


@dataclass(frozen=True, slots=True)
class SubmitAnswer:
    """ComfyUI's answer to ``POST /prompt``: ``status`` 200 or 400 (node errors) with its JSON body."""

    status: int
    body: dict[str, Any]


def _ids(items: object) -> frozenset[str]:
    if not isinstance(items, list):
        return frozenset()
    return frozenset(str(item[1]) for item in items if isinstance(item, list) and len(item) > 1)


class Backend:
    """One ComfyUI server, addressed by its base URL (``http://127.0.0.1:8188``)."""

    def __init__(self, url: str, session: aiohttp.ClientSession, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"Backend({self.url})"

    async def _json(self, method: str, path: str, body: object = None, *, ok: tuple[int, ...] = (200,)) -> Any:
        try:
            async with self.session.request(method, self.url + path, json=body, timeout=self.timeout) as resp:
                if resp.status not in ok:
                    raise BackendUnavailable(f"{self.url}{path}: answered HTTP {resp.status}")
                if resp.content_type != "application/json":
                    return {"status": resp.status}
                return {"status": resp.status, "body": await resp.json()}
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise BackendUnavailable(f"{self.url}{path}: {type(e).__name__}: {e}") from e

    async def queue(self) -> QueueView:
        answer = await self._json("GET", "/queue")
        body = answer.get("body") or {}
        return QueueView(running=_ids(body.get("queue_running")), pending=_ids(body.get("queue_pending")))

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        answer = await self._json("GET", f"/history/{prompt_id}")
        entry = (answer.get("body") or {}).get(prompt_id)
        return entry if isinstance(entry, dict) else None

    async def submit(self, body: dict[str, Any]) -> SubmitAnswer:
        answer = await self._json("POST", "/prompt", body, ok=(200, 400))
        return SubmitAnswer(status=answer["status"], body=answer.get("body") or {})

    async def interrupt(self, prompt_id: str) -> None:
        await self._json("POST", "/interrupt", {"prompt_id": prompt_id})

    async def delete_pending(self, prompt_id: str) -> None:
        await self._json("POST", "/queue", {"delete": [prompt_id]})
