"""The job system as one object the gateway holds: journal, event hub, runners, and request policy hooks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from wanx.jobs.dispatch import OPEN_STATES, Dispatcher
from wanx.jobs.events import EventHub
from wanx.jobs.runner import RunnerSettings
from wanx.jobs.store import JobStore, SQLiteStore
from wanx.jobs.validate import Validator, basic_validate

__all__ = ["JOBS", "JobService", "JobSettings", "Viewer", "ViewerOf", "jobs_context", "single_user"]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: jobs are tagged with ``owner``; ``sees_all`` (admins) lifts the owner filter."""

    owner: str = ""
    sees_all: bool = False

    def filter(self) -> str | None:
        return None if self.sees_all else self.owner

    def may_see(self, owner: str) -> bool:
        return self.sees_all or owner == self.owner


ViewerOf = Callable[[web.Request], Viewer]


def single_user(request: web.Request) -> Viewer:
    """Without a gateway principal every caller is the same user."""
    del request
    return Viewer()


@dataclass(frozen=True, slots=True)
class JobSettings:
    journal: Path
    upstreams: tuple[str, ...]
    runner: RunnerSettings = field(default_factory=RunnerSettings)


@dataclass(slots=True)
class JobService:
    store: JobStore
    hub: EventHub
    dispatcher: Dispatcher
    session: aiohttp.ClientSession
    validate: Validator
    viewer: ViewerOf

    @classmethod
    async def start(
        cls, settings: JobSettings, *, validate: Validator = basic_validate, viewer: ViewerOf = single_user
    ) -> JobService:
        store = await SQLiteStore.open(settings.journal)
        # The backend routes a job's events by the client id it was submitted with; keeping ours in the
        # journal lets a restarted gateway hear the jobs it submitted before.
        client_id = await store.meta("client_id", Dispatcher.new_client_id)
        session = aiohttp.ClientSession()
        hub = EventHub()
        dispatcher = Dispatcher(store, hub, settings.upstreams, session, client_id=client_id, settings=settings.runner)
        await dispatcher.requeue_orphans()
        dispatcher.start()
        return cls(store, hub, dispatcher, session, validate, viewer)

    async def open_ids(self) -> set[str]:
        """Ids of the jobs not finished yet (queued or on a backend)."""
        return {job.prompt_id for job in await self.store.jobs(OPEN_STATES)}

    async def close(self) -> None:
        await self.dispatcher.stop()
        await self.hub.close_all()
        await self.session.close()
        await self.store.close()


JOBS = web.AppKey("wanx_jobs", JobService)


def jobs_context(
    settings: JobSettings, *, validate: Validator = basic_validate, viewer: ViewerOf = single_user
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp ``cleanup_ctx`` entry that starts the job service with the app and stops it after."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        app[JOBS] = await JobService.start(settings, validate=validate, viewer=viewer)
        yield
        await app[JOBS].close()

    return context
