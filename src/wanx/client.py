"""ComfyClient: upload inputs, submit a graph, follow it to the end (websocket, else polling), download outputs.

A job is finished only when ``/history`` says so, and an ``execution_error`` (websocket) or a history
status of ``error`` is a failure, never a success. Requests are retried on connection errors; a job lost
by a server restart is noticed (in neither the queue nor the history once the server answers again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from wanx.errors import ComfyRequestError, ComfyUnavailable, JobFailed, JobLost, JobTimeout
from wanx.fsutil import temp_sibling

__all__ = ["ComfyClient", "JobResult", "OutputFile", "Progress"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_RETRYABLE = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)


@dataclass(frozen=True, slots=True)
class Progress:
    """A step of a running job: ``value`` of ``max`` on ``node`` (``event`` is the websocket message type)."""

    prompt_id: str
    event: str
    node: str | None = None
    value: int = 0
    max: int = 0


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file a node wrote; ``kind`` is the history key it came under (VHS videos: ``gifs``)."""

    node_id: str
    kind: str
    filename: str
    subfolder: str
    type: str


@dataclass(frozen=True, slots=True)
class JobResult:
    prompt_id: str
    outputs: tuple[OutputFile, ...]


ProgressCallback = Callable[[Progress], None]


class ComfyClient:
    """Talks to ComfyUI, or to the wanx gateway in front of it (``token`` is sent as a Bearer token).

    Usage::

        async with ComfyClient("http://127.0.0.1:8080", token="...") as comfy:
            name = await comfy.upload(Path("cat.png"))
            result = await comfy.run(graph, timeout=1800)
            await comfy.download(result.outputs[0], Path("out.mp4"))
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        retries: int = 4,
        retry_delay: float = 0.5,
        request_timeout: float = 60.0,
        poll_interval: float = 1.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = uuid.uuid4().hex
        self._token = token
        self._session = session
        self._owns_session = session is None
        self._retries = retries
        self._retry_delay = retry_delay
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=request_timeout)
        self._poll = poll_interval

    async def __aenter__(self) -> ComfyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        return f"ComfyClient({self.base_url!r}, token={'***' if self._token else None})"

    # ------------------------------------------------------------------ plumbing
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def _retry(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        delay = self._retry_delay
        for attempt in range(self._retries + 1):
            try:
                return await call()
            except _RETRYABLE as exc:
                if attempt == self._retries:
                    raise ComfyUnavailable(
                        f"{self.base_url}: {what} failed after {attempt + 1} tries ({exc!r})"
                    ) from exc
                log.info("retrying %s", what, extra={"event": "client.retry", "attempt": attempt + 1})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        async def call() -> Any:
            async with self._http().request(method, self.base_url + path, headers=self._headers(), **kwargs) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise _request_error(method, path, resp.status, body)
                return json.loads(body) if body else None

        return await self._retry(f"{method} {path}", call)

    # ------------------------------------------------------------------ API
    async def upload(self, path: Path, *, subfolder: str = "") -> str:
        """Upload an image, mask or video to ComfyUI's input folder; returns the name to put in the graph."""

        async def call() -> Any:
            with path.open("rb") as fh:
                form = aiohttp.FormData()
                form.add_field("image", fh, filename=path.name, content_type="application/octet-stream")
                form.add_field("type", "input")
                form.add_field("subfolder", subfolder)
                async with self._http().post(
                    self.base_url + "/upload/image", data=form, headers=self._headers()
                ) as resp:
                    body = await resp.read()
                    if resp.status >= 400:
                        raise _request_error("POST", "/upload/image", resp.status, body)
                    return json.loads(body)

        answer = await self._retry(f"upload of {path.name}", call)
        name = str(answer["name"])
        return f"{answer['subfolder']}/{name}" if answer.get("subfolder") else name

    async def submit(self, graph: Mapping[str, Any], *, prompt_id: str | None = None) -> str:
        """Queue ``graph`` under a client-chosen prompt id (so a retried POST never queues it twice)."""
        prompt_id = prompt_id or str(uuid.uuid4())
        body = {"prompt": graph, "client_id": self.client_id, "prompt_id": prompt_id}
        try:
            answer = await self._json("POST", "/prompt", json=body)
        except ComfyUnavailable:
            if await self._known(prompt_id):  # the POST got through before the connection broke
                return prompt_id
            raise
        return str(answer.get("prompt_id", prompt_id))

    async def _known(self, prompt_id: str) -> bool:
        with contextlib.suppress(ComfyUnavailable, ComfyRequestError):
            return await self._state(prompt_id) != "unknown"
        return False

    async def _state(self, prompt_id: str) -> str:
        """``done`` (in history), ``queued`` (running or pending) or ``unknown``."""
        history = await self._json("GET", f"/history/{prompt_id}")
        if isinstance(history, dict) and prompt_id in history:
            return "done"
        queue = await self._json("GET", "/queue")
        items = [*queue.get("queue_running", []), *queue.get("queue_pending", [])]
        return "queued" if any(len(i) > 1 and i[1] == prompt_id for i in items) else "unknown"

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        answer = await self._json("GET", f"/history/{prompt_id}")
        entry = answer.get(prompt_id) if isinstance(answer, dict) else None
        return entry if isinstance(entry, dict) else None

    async def wait(self, prompt_id: str, *, timeout: float, on_progress: ProgressCallback | None = None) -> JobResult:
        """Follow ``prompt_id`` until it ends; raises JobFailed, JobLost or JobTimeout."""
        deadline = time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout):
                while True:
                    ended = await self._follow_ws(prompt_id, on_progress, deadline)
                    state = await self._settled_state(prompt_id, quick=ended)
                    if state == "done":
                        entry = await self.history(prompt_id)
                        return _result(prompt_id, entry or {})
                    if state == "unknown":
                        raise JobLost(f"job {prompt_id} is gone from the server (restarted?)", prompt_id=prompt_id)
        except TimeoutError as exc:
            raise JobTimeout(f"job {prompt_id} did not finish within {timeout:g} s", prompt_id=prompt_id) from exc

    async def _settled_state(self, prompt_id: str, *, quick: bool) -> str:
        """The job's state once the server answers; after an end event, wait briefly for history to be written."""
        tries = 50 if quick else 1
        while True:
            try:
                state = await self._state(prompt_id)
            except ComfyUnavailable:
                await asyncio.sleep(self._poll)
                continue
            tries -= 1
            if state != "queued" or tries <= 0:
                return state
            await asyncio.sleep(0.1)

    async def _follow_ws(self, prompt_id: str, on_progress: ProgressCallback | None, deadline: float) -> bool:
        """Read websocket events until the job ends (True) or the socket breaks; polls while it is quiet."""
        url = f"{self.base_url}/ws?clientId={self.client_id}"
        if self._token:
            url += f"&token={self._token}"
        try:
            async with self._http().ws_connect(url, headers=self._headers(), heartbeat=30) as ws:
                while True:
                    try:
                        msg = await ws.receive(timeout=self._poll * 5)
                    except TimeoutError:
                        if await self._state(prompt_id) != "queued":
                            return False
                        continue
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                            return False
                        continue  # binary preview frames
                    if _handle_event(prompt_id, json.loads(msg.data), on_progress):
                        return True
        except (aiohttp.ClientConnectionError, aiohttp.WSServerHandshakeError, ComfyUnavailable):
            await self._poll_until_back(prompt_id, on_progress, deadline)
        return False

    async def _poll_until_back(self, prompt_id: str, on_progress: ProgressCallback | None, deadline: float) -> None:
        """Websocket unavailable: poll /history and /queue until the job ends or the server drops it."""
        while time.monotonic() < deadline:
            try:
                state = await self._state(prompt_id)
            except ComfyUnavailable:
                state = "unreachable"
            if state in ("done", "unknown"):
                return
            if on_progress is not None:
                on_progress(Progress(prompt_id, "polling"))
            await asyncio.sleep(self._poll)

    async def object_info(self) -> dict[str, Any]:
        """The server's node schemas (``GET /object_info``)."""
        answer = await self._json("GET", "/object_info")
        if not isinstance(answer, dict):
            raise ComfyRequestError("GET /object_info: answer is not a JSON object", status=200)
        return answer

    async def interrupt(self) -> None:
        await self._json("POST", "/interrupt", json={})

    async def download(self, output: OutputFile, dest: Path) -> Path:
        """Stream one output file to ``dest`` (temp sibling, then rename)."""
        params = {"filename": output.filename, "subfolder": output.subfolder, "type": output.type}

        async def call() -> Path:
            async with self._http().get(self.base_url + "/view", params=params, headers=self._headers()) as resp:
                if resp.status >= 400:
                    raise _request_error("GET", "/view", resp.status, await resp.read())
                with temp_sibling(dest) as tmp:
                    with tmp.open("wb") as fh:
                        async for chunk in resp.content.iter_chunked(1 << 20):
                            fh.write(chunk)
                    tmp.replace(dest)
            return dest

        return await self._retry(f"download of {output.filename}", call)

    async def run(
        self,
        graph: Mapping[str, Any],
        *,
        timeout: float,
        on_progress: ProgressCallback | None = None,
        on_submit: Callable[[str], None] | None = None,
        resubmit: int = 1,
    ) -> JobResult:
        """Submit and wait; a job lost to a server restart is submitted again up to ``resubmit`` times."""
        deadline = time.monotonic() + timeout
        for attempt in range(resubmit + 1):
            prompt_id = await self.submit(graph)
            if on_submit is not None:
                on_submit(prompt_id)
            try:
                return await self.wait(
                    prompt_id, timeout=max(deadline - time.monotonic(), 0.1), on_progress=on_progress
                )
            except JobLost:
                if attempt == resubmit:
                    raise
        raise AssertionError("unreachable")


def _handle_event(prompt_id: str, event: Any, on_progress: ProgressCallback | None) -> bool:
    """Returns True when the event ends the job; raises JobFailed on an execution error or interrupt."""
    if not isinstance(event, dict):
        return False
    kind, data = event.get("type"), event.get("data") or {}
    if data.get("prompt_id") != prompt_id:
        return False
    if kind == "execution_error":
        node, node_type = data.get("node_id"), data.get("node_type")
        raise JobFailed(
            f"job {prompt_id} failed at node {node} ({node_type}): "
            f"{data.get('exception_type', 'error')}: {data.get('exception_message', '').strip()}",
            prompt_id=prompt_id,
            node_id=None if node is None else str(node),
        )
    if kind == "execution_interrupted":
        raise JobFailed(f"job {prompt_id} was interrupted at node {data.get('node_id')}", prompt_id=prompt_id)
    if on_progress is not None and kind in ("progress", "executing", "execution_start", "execution_cached"):
        node = data.get("node")
        on_progress(
            Progress(prompt_id, kind, None if node is None else str(node), data.get("value", 0), data.get("max", 0))
        )
    return kind == "execution_success" or (kind == "executing" and data.get("node") is None)


def _result(prompt_id: str, entry: Mapping[str, Any]) -> JobResult:
    status = entry.get("status") or {}
    if status.get("status_str") == "error":
        raise _failure_from_history(prompt_id, status)
    outputs = []
    for node_id, produced in (entry.get("outputs") or {}).items():
        for kind, items in produced.items():
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict) and "filename" in item:
                    outputs.append(
                        OutputFile(
                            str(node_id), kind, item["filename"], item.get("subfolder", ""), item.get("type", "output")
                        )
                    )
    return JobResult(prompt_id, tuple(outputs))


def _failure_from_history(prompt_id: str, status: Mapping[str, Any]) -> JobFailed:
    for kind, data in status.get("messages", []):
        if kind == "execution_error":
            return JobFailed(
                f"job {prompt_id} failed at node {data.get('node_id')} ({data.get('node_type')}): "
                f"{data.get('exception_type', 'error')}: {str(data.get('exception_message', '')).strip()}",
                prompt_id=prompt_id,
                node_id=str(data.get("node_id")),
            )
        if kind == "execution_interrupted":
            return JobFailed(f"job {prompt_id} was interrupted at node {data.get('node_id')}", prompt_id=prompt_id)
    return JobFailed(f"job {prompt_id} ended with status error (no error message recorded)", prompt_id=prompt_id)


def _request_error(method: str, path: str, status: int, body: bytes) -> ComfyRequestError:
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    detail = text.strip()[:300]
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        detail = str(data["error"].get("message", detail))
        for node_id, info in (data.get("node_errors") or {}).items():
            for err in info.get("errors", []):
                detail += f"; node {node_id} ({info.get('class_type')}): {err.get('message')}: {err.get('details', '')}"
    hint = None
    if status in (401, 403):
        hint = "Check the token (--token or WANX_TOKEN); an operator creates one with 'wanx token new'."
    return ComfyRequestError(f"{method} {path}: HTTP {status}: {detail}", status=status, hint=hint)
