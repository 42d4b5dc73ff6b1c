"""ComfyUI's job routes answered from the journal: ``/prompt``, ``/queue``, ``/history``, ``/interrupt``,
``/view`` and ``/ws``, each also under ``/api``, plus ``/wanx/jobs/{id}`` with the gateway's own view."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from wanx.errors import BackendUnavailable, JournalError
from wanx.gateway.paths import split_target, strip_token_query
from wanx.gateway.proxy import relay_download
from wanx.gateway.state import POOL_KEY
from wanx.jobs.events import ClientSocket, status_message
from wanx.jobs.model import ACTIVE, TERMINAL, Job, JobState, NewJob, body_hash, is_prompt_id, queue_item
from wanx.jobs.service import JOBS, JobService, Viewer
from wanx.jobs.validate import Rejection, rejection

__all__ = ["PATH_PARAMS", "ROUTES", "accept_prompt", "add_job_routes"]

log = logging.getLogger(__name__)

# ComfyUI strips these from queue and history views (v0.33); the journal never stores them at all.
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
_VIEW_HEADERS = ("Content-Type", "Content-Length", "Content-Disposition", "Cache-Control", "ETag", "Last-Modified")


# Path parameters when a host app (the gateway) matched the route itself instead of aiohttp's router.
PATH_PARAMS = web.RequestKey("wanx_jobs_path_params", dict)


def _param(request: web.Request, name: str) -> str:
    params = request.get(PATH_PARAMS)
    return str(params[name]) if params and name in params else request.match_info[name]


def _svc(request: web.Request) -> tuple[JobService, Viewer]:
    service = request.app[JOBS]
    return service, service.viewer(request)


def _bad(reason: Rejection, status: int = 400) -> web.Response:
    return web.json_response(reason.body(), status=status)


def _entry(job: Job) -> dict[str, Any]:
    return {**(job.history or {}), "wanx": job.wanx_status()}


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


# ---------------------------------------------------------------------- /prompt
async def post_prompt(request: web.Request) -> web.Response:
    service, viewer = _svc(request)
    return await accept_prompt(service, viewer, await _json_body(request))


async def accept_prompt(service: JobService, viewer: Viewer, body: Any) -> web.Response:
    """Validate and journal one ``POST /prompt`` body (already parsed); 200 only once it is committed."""
    if not isinstance(body, dict):
        return _bad(rejection("invalid_json", "The request body is not a JSON object"))
    if "prompt" not in body:
        return _bad(rejection("no_prompt", "No prompt provided", "No prompt provided"))
    prompt_id = body.get("prompt_id")
    if prompt_id is None:
        prompt_id = str(uuid.uuid4())
    elif not is_prompt_id(prompt_id):
        return _bad(
            rejection("invalid_prompt_id", f"prompt_id {prompt_id!r} is not a canonical lowercase UUID", str(prompt_id))
        )
    checked = service.validate(body["prompt"])
    if isinstance(checked, Rejection):
        return _bad(checked)
    extra = body.get("extra_data")
    extra = {k: v for k, v in extra.items() if k not in SENSITIVE_EXTRA_DATA_KEYS} if isinstance(extra, dict) else {}
    client_id = body.get("client_id") or extra.get("client_id")
    if client_id is not None:
        extra["client_id"] = client_id = str(client_id)
    new = NewJob(prompt_id, viewer.owner, client_id, body_hash(body), body["prompt"], extra, checked)
    try:
        job, created = await service.store.create(new)
    except JournalError as e:
        log.error("journal write failed: %s", e, extra={"event": "jobs.journal_failed"})
        return _bad(rejection("journal_unavailable", "The job journal cannot be written; nothing was queued"), 503)
    if not created and (job.body_hash != new.body_hash or job.owner != new.owner):
        reason = rejection(
            "prompt_id_conflict",
            f"prompt_id {prompt_id} is already used by a different request; send a new prompt_id",
            prompt_id,
        )
        return _bad(reason, 409)
    if created:
        service.dispatcher.notify()
        log.info("job %s queued", prompt_id, extra={"event": "jobs.accepted", "prompt_id": prompt_id})
    return web.json_response(job.accepted_answer())


async def get_prompt(request: web.Request) -> web.Response:
    service, _ = _svc(request)
    return web.json_response({"exec_info": {"queue_remaining": await service.dispatcher.queue_remaining()}})


# ---------------------------------------------------------------------- /queue
async def get_queue(request: web.Request) -> web.Response:
    service, viewer = _svc(request)
    running = await service.store.jobs(ACTIVE, owner=viewer.filter())
    pending = await service.store.jobs([JobState.QUEUED], owner=viewer.filter())
    return web.json_response(
        {"queue_running": [queue_item(j) for j in running], "queue_pending": [queue_item(j) for j in pending]}
    )


async def _cancel_queued(service: JobService, jobs: list[Job]) -> None:
    for job in jobs:
        done = replace(job, state=JobState.CANCELLED, error="deleted from the queue", finished_at=time.time())
        await service.store.save(done, expect=JobState.QUEUED)
    service.dispatcher.changed.set()


async def post_queue(request: web.Request) -> web.Response:
    service, viewer = _svc(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        return web.Response(status=400, text="expected a JSON object with 'clear' or 'delete'")
    queued = await service.store.jobs([JobState.QUEUED], owner=viewer.filter())
    if body.get("clear"):
        await _cancel_queued(service, queued)
    wanted = body.get("delete")
    if isinstance(wanted, list):
        await _cancel_queued(service, [j for j in queued if j.prompt_id in wanted])
    return web.Response(status=200)


async def post_interrupt(request: web.Request) -> web.Response:
    service, viewer = _svc(request)
    body = await _json_body(request)
    wanted = body.get("prompt_id") if isinstance(body, dict) else None
    for job in await service.store.jobs(ACTIVE, owner=viewer.filter()):
        if wanted not in (None, job.prompt_id):
            continue
        runner = service.dispatcher.runner_for(job.backend)
        if runner is not None:
            with contextlib.suppress(BackendUnavailable):
                await runner.backend.interrupt(job.prompt_id)
    return web.Response(status=200)


# ---------------------------------------------------------------------- /history
def _window(jobs: list[Job], max_items: int | None, offset: int) -> list[Job]:
    """ComfyUI's paging: no offset means the newest ``max_items``."""
    if offset < 0 and max_items is not None:
        offset = max(0, len(jobs) - max_items)
    jobs = jobs[max(offset, 0) :]
    return jobs if max_items is None else jobs[:max_items]


async def get_history(request: web.Request) -> web.Response:
    service, viewer = _svc(request)
    try:
        max_items = int(request.query["max_items"]) if "max_items" in request.query else None
        offset = int(request.query.get("offset", "-1"))
    except ValueError:
        return web.Response(status=400, text="max_items and offset must be integers")
    finished = [j for j in await service.store.jobs(TERMINAL, owner=viewer.filter()) if j.history is not None]
    return web.json_response({j.prompt_id: _entry(j) for j in _window(finished, max_items, offset)})


async def get_history_one(request: web.Request) -> web.Response:
    service, viewer = _svc(request)
    prompt_id = _param(request, "prompt_id")
    job = await service.store.get(prompt_id)
    if job is None or not viewer.may_see(job.owner) or not job.terminal or job.history is None:
        return web.json_response({})
    return web.json_response({prompt_id: _entry(job)})


async def post_history(request: web.Request) -> web.Response:
    service, viewer = _svc(request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        return web.Response(status=400, text="expected a JSON object with 'clear' or 'delete'")
    if body.get("clear"):
        finished = await service.store.jobs(TERMINAL, owner=viewer.filter())
        await service.store.delete([j.prompt_id for j in finished], owner=viewer.filter())
    wanted = body.get("delete")
    if isinstance(wanted, list):
        await service.store.delete([str(p) for p in wanted], owner=viewer.filter())
    return web.Response(status=200)


async def get_job(request: web.Request) -> web.Response:
    """The gateway's own status of one job (state, attempts, crashes, backend, error)."""
    service, viewer = _svc(request)
    job = await service.store.get(_param(request, "prompt_id"))
    if job is None or not viewer.may_see(job.owner):
        return web.json_response({"error": {"code": "job_not_found", "message": "no such job"}}, status=404)
    return web.json_response({"prompt_id": job.prompt_id, "number": job.seq, **job.wanx_status()})


# ---------------------------------------------------------------------- /view
async def _relay_view(request: web.Request, service: JobService, backend: str) -> web.StreamResponse | None:
    """Stream ``/view`` from one backend; None when it has no such file or does not answer."""
    if POOL_KEY in request.app:  # inside the gateway: its pool, and socket-to-socket for large files
        target = "/view?" + strip_token_query(split_target(request.raw_path)[1])
        return await relay_download(request, request.app[POOL_KEY], URL(backend), target, keep_headers=_VIEW_HEADERS)
    url = f"{backend}/view"
    try:
        async with service.session.get(url, params=request.query, timeout=aiohttp.ClientTimeout(sock_read=60)) as up:
            if up.status == 404:
                return None
            if up.status != 200:
                return web.Response(status=up.status, body=await up.read(), content_type=up.content_type)
            resp = web.StreamResponse(status=200)
            for name in _VIEW_HEADERS:
                if name in up.headers:
                    resp.headers[name] = up.headers[name]
            await resp.prepare(request)
            async for chunk in up.content.iter_chunked(1 << 20):
                await resp.write(chunk)
            await resp.write_eof()
            return resp
    except (aiohttp.ClientError, TimeoutError):
        return None


async def get_view(request: web.Request) -> web.StreamResponse:
    service, viewer = _svc(request)
    filename = request.query.get("filename", "")
    if not filename:
        return web.Response(status=400, text="filename is required")
    kind = request.query.get("type", "output")
    maker = await service.store.output_owner(filename, request.query.get("subfolder", ""), kind)
    if maker is not None and not viewer.may_see(maker.owner):
        return web.Response(status=404)
    backends = [r.name for r in service.dispatcher.runners]
    if maker is not None and maker.backend in backends:
        backends = [maker.backend, *(b for b in backends if b != maker.backend)]
    for backend in backends:
        answer = await _relay_view(request, service, backend)
        if answer is not None:
            return answer
    return web.Response(status=404)


# ---------------------------------------------------------------------- /ws
async def websocket(request: web.Request) -> web.WebSocketResponse:
    service, viewer = _svc(request)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    client_id = request.query.get("clientId") or uuid.uuid4().hex
    sock = ClientSocket(client_id=client_id, owner=viewer.owner, ws=ws)
    service.hub.add(sock)
    try:
        await ws.send_json(status_message(await service.dispatcher.queue_remaining(), sid=client_id))
        async for _ in ws:
            pass  # feature_flags and the like: nothing for the gateway to act on
    finally:
        service.hub.remove(sock)
    return ws


ROUTES: tuple[tuple[str, str, Any], ...] = (
    ("POST", "/prompt", post_prompt),
    ("GET", "/prompt", get_prompt),
    ("GET", "/queue", get_queue),
    ("POST", "/queue", post_queue),
    ("POST", "/interrupt", post_interrupt),
    ("GET", "/history", get_history),
    ("POST", "/history", post_history),
    ("GET", "/history/{prompt_id}", get_history_one),
    ("GET", "/view", get_view),
    ("GET", "/ws", websocket),
    ("GET", "/wanx/jobs/{prompt_id}", get_job),
)


def add_job_routes(app: web.Application) -> None:
    """Register every job route at ``/x`` and ``/api/x``, as ComfyUI does."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
        app.router.add_route(method, "/api" + path, handler)
