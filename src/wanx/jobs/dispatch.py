"""Idle-backend dispatch: one runner per backend, all claiming from the same journal queue in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

import aiohttp

from wanx.jobs.backend import Backend
from wanx.jobs.events import EventHub
from wanx.jobs.model import ACTIVE, JobState
from wanx.jobs.runner import Runner, RunnerSettings
from wanx.jobs.store import JobStore

__all__ = ["Dispatcher", "DispatcherStatus"]

log = logging.getLogger(__name__)

OPEN_STATES = frozenset({JobState.QUEUED, *ACTIVE})


@dataclass(frozen=True, slots=True)
class DispatcherStatus:
    backend: str
    up: bool
    last_recovery_s: float | None


class Dispatcher:
    """Owns the runners. A backend takes the oldest queued job only when it has nothing else to do, so work
    spreads over every GPU and a crash is always blamed on the one job the backend was running."""

    def __init__(
        self,
        store: JobStore,
        hub: EventHub,
        upstreams: Sequence[str],
        session: aiohttp.ClientSession,
        *,
        client_id: str,
        settings: RunnerSettings,
    ) -> None:
        self.store = store
        self.hub = hub
        self.changed = asyncio.Event()
        self.runners = [
            Runner(Backend(url, session), store, hub, client_id=client_id, settings=settings, on_change=self.changed)
            for url in dict.fromkeys(u.rstrip("/") for u in upstreams)
        ]
        self._tasks: list[asyncio.Task[None]] = []

    @staticmethod
    def new_client_id() -> str:
        return f"wanx-gateway-{uuid.uuid4()}"

    async def requeue_orphans(self) -> int:
        """Queue again the jobs left on a backend that is no longer configured (it will never be asked)."""
        known = {r.name for r in self.runners}
        count = 0
        for job in await self.store.jobs(ACTIVE):
            if job.backend in known:
                continue
            error = f"backend {job.backend} is no longer configured; queued again"
            log.warning(error, extra={"event": "jobs.orphan_requeued", "prompt_id": job.prompt_id})
            count += await self.store.save(
                replace(job, state=JobState.QUEUED, backend=None, error=error), expect=job.state
            )
        return count

    def start(self) -> None:
        self._tasks = [asyncio.create_task(r.run(), name=f"runner {r.name}") for r in self.runners]
        self._tasks.append(asyncio.create_task(self._announce(), name="queue status"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def notify(self) -> None:
        """A job was queued: wake every runner (only idle ones will claim)."""
        for runner in self.runners:
            runner.wake.set()
        self.changed.set()

    def runner_for(self, backend: str | None) -> Runner | None:
        return next((r for r in self.runners if r.name == backend), None)

    def status(self) -> list[DispatcherStatus]:
        return [DispatcherStatus(r.name, r.up, r.last_recovery_s) for r in self.runners]

    async def queue_remaining(self) -> int:
        return await self.store.count(OPEN_STATES)

    async def _announce(self) -> None:
        # ComfyUI broadcasts `status` on every queue change; the gateway does the same from its journal.
        while True:
            await self.changed.wait()
            self.changed.clear()
            try:
                await self.hub.broadcast_status(await self.queue_remaining())
            except Exception as e:  # a status broadcast must never stop the announcer
                log.warning("status broadcast failed: %s", e, extra={"event": "jobs.status_failed"})
            await asyncio.sleep(0.05)
