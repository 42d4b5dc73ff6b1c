"""One runner per ComfyUI backend: submit journaled jobs one at a time, follow them, recover lost ones.

Completion is decided only from the backend's ``/queue`` and ``/history`` (a quiet websocket is not a
finished job); the websocket only relays progress to the job's owner and wakes the runner early.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from wanx.errors import BackendUnavailable
from wanx.jobs.backend import Backend, QueueView
from wanx.jobs.events import EventHub
from wanx.jobs.model import ACTIVE, Job, JobState, queue_item
from wanx.jobs.store import JobStore

__all__ = ["Runner", "RunnerSettings", "error_entry"]

log = logging.getLogger(__name__)

# Sent by the runner itself once the journal holds the result, so a client that reacts to them by reading
# /history/{id} from the gateway always finds the entry.
_FINAL_EVENTS = frozenset({"execution_success", "execution_error", "execution_interrupted"})


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    poll_interval: float = 0.5
    # A backend that stopped answering is probed more often, so a restarted one gets its lost job back fast.
    down_poll_interval: float = 0.1
    max_attempts: int = 3
    poison_after: int = 2


def _now_ms() -> int:
    return int(time.time() * 1000)


def error_entry(job: Job, *, kind: str, message: str, node_errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ComfyUI-shaped history entry for a job that ended without a backend history (poison, lost, 400)."""
    error: dict[str, Any] = {
        "prompt_id": job.prompt_id,
        "node_id": None,
        "node_type": None,
        "executed": [],
        "exception_message": message,
        "exception_type": kind,
        "traceback": [],
        "current_inputs": {},
        "current_outputs": {},
        "timestamp": _now_ms(),
    }
    entry: dict[str, Any] = {
        "prompt": queue_item(job),
        "outputs": {},
        "status": {"status_str": "error", "completed": False, "messages": [["execution_error", error]]},
        "meta": {},
    }
    if node_errors:
        entry["node_errors"] = node_errors
    return entry


def _final_state(entry: dict[str, Any]) -> JobState:
    status = entry.get("status") or {}
    if status.get("status_str") == "success" or (status.get("completed") is True and "status_str" not in status):
        return JobState.SUCCEEDED
    kinds = {m[0] for m in status.get("messages") or [] if isinstance(m, list) and m}
    return JobState.CANCELLED if "execution_interrupted" in kinds else JobState.FAILED


class Runner:
    """Drives one backend. ``name`` is the backend's key in the journal (its base URL)."""

    def __init__(
        self,
        backend: Backend,
        store: JobStore,
        hub: EventHub,
        *,
        client_id: str,
        settings: RunnerSettings,
        on_change: asyncio.Event,
    ) -> None:
        self.backend = backend
        self.name = backend.url
        self.store = store
        self.hub = hub
        self.client_id = client_id
        self.settings = settings
        self.wake = asyncio.Event()
        self.on_change = on_change
        self.up = False
        self.came_up_at: float | None = None
        self.last_recovery_s: float | None = None
        self._watched: dict[str, Job] = {}

    # ------------------------------------------------------------------ main loop
    async def run(self) -> None:
        listener = asyncio.create_task(self._listen())
        try:
            while True:
                try:
                    await self.tick()
                except BackendUnavailable as e:
                    self._mark_down(str(e))
                except Exception as e:  # a runner must outlive any one bad answer or journal hiccup
                    log.exception("runner %s: %s", self.name, e, extra={"event": "jobs.runner_error"})
                interval = self.settings.poll_interval if self.up else self.settings.down_poll_interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), min(interval, self.settings.poll_interval))
                self.wake.clear()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def tick(self) -> None:
        """One pass: check the backend, settle every job it holds, then submit the next one if it is idle."""
        queue = await self.backend.queue()
        self._mark_up()
        active = await self.store.active_on(self.name)
        for job in active:
            await self._follow(job, queue)
        active = await self.store.active_on(self.name)
        self._watched = {job.prompt_id: job for job in active}
        if active or not queue.empty:
            return
        claimed = await self.store.claim_next(self.name)
        if claimed is not None:
            self._watched = {claimed.prompt_id: claimed}
            await self._submit(claimed)

    def _mark_down(self, reason: str) -> None:
        if self.up:
            log.warning("backend %s stopped answering: %s", self.name, reason, extra={"event": "jobs.backend_down"})
        self.up = False

    def _mark_up(self) -> None:
        if not self.up:
            self.up = True
            self.came_up_at = time.monotonic()
            log.info("backend %s answers", self.name, extra={"event": "jobs.backend_up", "backend": self.name})

    # ------------------------------------------------------------------ one job
    async def _follow(self, job: Job, queue: QueueView) -> None:
        # Queue first, then history: a job leaving the queue is already in the history (ComfyUI moves it under
        # one lock), so "in neither" read in this order really means the backend lost it.
        if job.prompt_id in queue:
            if job.state is JobState.SUBMITTED:
                await self._save(replace(job, state=JobState.RUNNING), job.state)
            return
        entry = await self.backend.history(job.prompt_id)
        if entry is not None:
            await self._finish(job, entry)
        else:
            await self._lost(job)

    async def _submit(self, job: Job) -> None:
        body = {
            "prompt": job.graph,
            "prompt_id": job.prompt_id,
            "client_id": self.client_id,
            "extra_data": {**job.extra_data, "client_id": self.client_id},
        }
        answer = await self.backend.submit(body)
        if answer.status != 200:
            node_errors = answer.body.get("node_errors") or {}
            error = answer.body.get("error") or {}
            message = str(error.get("message") if isinstance(error, dict) else error) or "rejected by the backend"
            entry = error_entry(job, kind="prompt_rejected", message=message, node_errors=node_errors)
            await self._end(job, JobState.FAILED, entry, f"backend rejected the prompt: {message}")
            return
        if await self._save(replace(job, state=JobState.RUNNING), job.state) and job.attempts > 1:
            extra: dict[str, Any] = {"event": "jobs.resubmitted", "prompt_id": job.prompt_id, "attempt": job.attempts}
            if self.came_up_at is not None:
                self.last_recovery_s = time.monotonic() - self.came_up_at
                extra["recovery_ms"] = round(self.last_recovery_s * 1000, 1)
            log.info("job %s resubmitted to %s", job.prompt_id, self.name, extra=extra)
            await self.hub.publish(
                job, {"type": "wanx_retry", "data": {"prompt_id": job.prompt_id, "attempt": job.attempts}}
            )

    async def _lost(self, job: Job) -> None:
        crashes = job.crashes + (1 if job.state is JobState.RUNNING else 0)
        lost = replace(job, crashes=crashes)
        if crashes >= self.settings.poison_after:
            message = f"job stopped its backend {crashes} times; quarantined as poison and not retried"
            await self._end(lost, JobState.POISONED, error_entry(lost, kind="wanx_poisoned", message=message), message)
        elif job.attempts >= self.settings.max_attempts:
            message = f"backends lost the job {job.attempts} times (retry cap {self.settings.max_attempts})"
            await self._end(lost, JobState.FAILED, error_entry(lost, kind="wanx_lost", message=message), message)
        else:
            error = f"backend {self.name} lost the job on attempt {job.attempts}; queued again"
            log.warning(error, extra={"event": "jobs.lost", "prompt_id": job.prompt_id, "crashes": crashes})
            await self._save(replace(lost, state=JobState.QUEUED, backend=None, error=error), job.state)

    async def _finish(self, job: Job, entry: dict[str, Any]) -> None:
        entry = {**entry, "prompt": queue_item(job)}
        state = _final_state(entry)
        await self._end(job, state, entry, "" if state is JobState.SUCCEEDED else "execution failed on the backend")

    async def _end(self, job: Job, state: JobState, entry: dict[str, Any], error: str) -> None:
        done = replace(job, state=state, history=entry, error=error, finished_at=time.time())
        if not await self._save(done, job.state):
            return
        log.info("job %s %s", job.prompt_id, state.value, extra={"event": "jobs.finished", "prompt_id": job.prompt_id})
        self._watched.pop(job.prompt_id, None)
        for kind, data in entry.get("status", {}).get("messages") or []:
            if kind in _FINAL_EVENTS:
                await self.hub.publish(done, {"type": kind, "data": data})
        await self.hub.publish(done, {"type": "executing", "data": {"node": None, "prompt_id": job.prompt_id}})

    async def _save(self, job: Job, expect: JobState) -> bool:
        saved = await self.store.save(job, expect=expect)
        if saved:
            self.on_change.set()
        return saved

    # ------------------------------------------------------------------ websocket relay
    async def _listen(self) -> None:
        url = f"{self.backend.url}/ws?clientId={self.client_id}"
        while True:
            try:
                async with self.backend.session.ws_connect(url, heartbeat=30) as ws:
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            await self._relay_text(msg.data)
                        elif msg.type == aiohttp.WSMsgType.BINARY:
                            await self._relay_bytes(msg.data)
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                log.debug("backend websocket %s: %s", url, e, extra={"event": "jobs.ws_retry"})
            await asyncio.sleep(self.settings.poll_interval)

    async def _relay_text(self, text: str) -> None:
        try:
            message = json.loads(text)
            prompt_id = message["data"]["prompt_id"]
            kind = message["type"]
        except (ValueError, KeyError, TypeError):
            return  # status broadcasts and the like: the gateway sends its own
        job = self._watched.get(prompt_id)
        if job is None:
            return
        if kind in _FINAL_EVENTS or (kind == "executing" and message["data"].get("node") is None):
            self.wake.set()
            return
        await self.hub.publish(job, text)

    async def _relay_bytes(self, payload: bytes) -> None:
        # Previews carry no prompt id; a backend runs one journal job at a time, so it is that job's.
        running = [job for job in self._watched.values() if job.state in ACTIVE]
        if len(running) == 1:
            await self.hub.publish_bytes(running[0], payload)
