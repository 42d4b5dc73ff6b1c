"""A stand-in for ComfyUI's HTTP and WebSocket API (v0.3.76 shapes), for machines without ComfyUI.

It speaks the real protocol on a real socket: every route at ``/x`` and ``/api/x``, ``POST /prompt``
with client-supplied ``prompt_id``, a FIFO queue executed by a background task that sends the same
websocket messages ComfyUI sends, ``/history`` entries with ``status`` and VHS outputs under ``gifs``,
streamed uploads and ``/view`` downloads, and ComfyUI's loopback Origin check.

Behaviour for tests is chosen by text inside the submitted graph (so it survives restarts):
``__FAKE_FAIL__`` makes the job end with ``execution_error``; ``__FAKE_CRASH__`` kills the process
when the job starts (exit code 137, like an OOM kill). ``--step-delay`` and ``--steps`` set how long a
job takes. ``GET /__fake/requests`` returns what the server received (method, path, query, headers).

Run standalone: ``python tests/helpers/fake_comfy.py --port 8188 --root DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

OUTPUT_CLASSES = {"VHS_VideoCombine", "SaveImage", "PreviewImage", "SaveAnimatedWEBP", "SaveVideo"}
FAIL_MARK = "__FAKE_FAIL__"
CRASH_MARK = "__FAKE_CRASH__"


@dataclass
class Job:
    number: int
    prompt_id: str
    graph: dict[str, Any]
    extra_data: dict[str, Any]
    outputs_to_execute: list[str]

    def as_queue_item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs_to_execute]


@dataclass
class FakeComfy:
    root: Path
    steps: int = 3
    step_delay: float = 0.05
    counter: int = 0
    pending: list[Job] = field(default_factory=list)
    running: Job | None = None
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    sockets: dict[str, web.WebSocketResponse] = field(default_factory=dict)
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=2000))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    interrupted: bool = False

    # ------------------------------------------------------------------ helpers
    def folder(self, kind: str) -> Path:
        if kind not in ("input", "output", "temp"):
            raise web.HTTPBadRequest(text=f"bad type {kind}")
        path = self.root / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def send(self, message: dict[str, Any], client_id: str | None = None) -> None:
        targets = [self.sockets[client_id]] if client_id in self.sockets else []
        if client_id is None:
            targets = list(self.sockets.values())
        for ws in targets:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps(message))

    def queue_remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    async def broadcast_status(self) -> None:
        await self.send(
            {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}}}
        )

    # ------------------------------------------------------------------ execution
    async def worker(self) -> None:
        while True:
            while not self.pending:
                self.wake.clear()
                await self.wake.wait()
            job = self.pending.pop(0)
            self.running = job
            self.interrupted = False
            try:
                await self.execute(job)
            finally:
                self.running = None
                await self.broadcast_status()

    async def execute(self, job: Job) -> None:
        client = job.extra_data.get("client_id")
        text = json.dumps(job.graph)
        messages: list[list[Any]] = []

        async def emit(kind: str, data: dict[str, Any], *, record: bool = False) -> None:
            data = {**data, "prompt_id": job.prompt_id}
            if record:
                messages.append([kind, {**data, "timestamp": int(time.time() * 1000)}])
            await self.send({"type": kind, "data": data}, client)

        await emit("execution_start", {"timestamp": int(time.time() * 1000)}, record=True)
        await emit("execution_cached", {"nodes": []}, record=True)
        if CRASH_MARK in text:
            os._exit(137)
        outputs: dict[str, Any] = {}
        node_ids = sorted(job.graph, key=lambda n: (job.graph[n].get("class_type") in OUTPUT_CLASSES, n))
        for node_id in node_ids:
            node = job.graph[node_id]
            await emit("executing", {"node": node_id, "display_node": node_id})
            if (
                node.get("class_type") == "KSampler"
                or node.get("class_type") == "WanVideoSampler"
                or node_id == node_ids[-1]
            ):
                for step in range(1, self.steps + 1):
                    await asyncio.sleep(self.step_delay)
                    if self.interrupted:
                        break
                    await emit("progress", {"value": step, "max": self.steps, "node": node_id})
            if self.interrupted:
                await emit(
                    "execution_interrupted",
                    {"node_id": node_id, "node_type": node.get("class_type"), "executed": []},
                    record=True,
                )
                self.finish(job, outputs, messages, "error")
                return
            if FAIL_MARK in text and node_id == node_ids[-2 if len(node_ids) > 1 else -1]:
                error = {
                    "node_id": node_id,
                    "node_type": node.get("class_type"),
                    "executed": [],
                    "exception_message": "fake failure requested by the graph",
                    "exception_type": "RuntimeError",
                    "traceback": ["fake traceback"],
                    "current_inputs": {},
                    "current_outputs": {},
                }
                await emit("execution_error", error, record=True)
                self.finish(job, outputs, messages, "error")
                return
            output = self.make_output(job, node_id, node)
            if output is not None:
                outputs[node_id] = output
                await emit("executed", {"node": node_id, "display_node": node_id, "output": output})
        await emit("execution_success", {"timestamp": int(time.time() * 1000)}, record=True)
        self.finish(job, outputs, messages, "success")
        await self.send({"type": "executing", "data": {"node": None, "prompt_id": job.prompt_id}}, client)

    def make_output(self, job: Job, node_id: str, node: dict[str, Any]) -> dict[str, Any] | None:
        cls = node.get("class_type")
        if cls not in OUTPUT_CLASSES:
            return None
        prefix = str(node.get("inputs", {}).get("filename_prefix", "ComfyUI"))
        self.counter += 1
        video = cls == "VHS_VideoCombine"
        name = f"{prefix}_{self.counter:05}_.{'mp4' if video else 'png'}"
        kind = "temp" if cls == "PreviewImage" else "output"
        payload = hashlib.sha256(f"{job.prompt_id}:{node_id}".encode()).digest() * 64
        (self.folder(kind) / name).write_bytes(payload)
        item = {"filename": name, "subfolder": "", "type": kind}
        if video:
            return {
                "gifs": [
                    {
                        **item,
                        "format": "video/h264-mp4",
                        "frame_rate": 16.0,
                        "workflow": name.replace(".mp4", ".png"),
                        "fullpath": str(self.folder(kind) / name),
                    }
                ]
            }
        return {"images": [item]}

    def finish(self, job: Job, outputs: dict[str, Any], messages: list[list[Any]], status: str) -> None:
        self.history[job.prompt_id] = {
            "prompt": job.as_queue_item(),
            "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success", "messages": messages},
            "meta": {node: {"node_id": node, "display_node": node} for node in outputs},
        }


KEY = web.AppKey("fake", FakeComfy)


def _state(request: web.Request) -> FakeComfy:
    return request.app[KEY]


# ---------------------------------------------------------------------- handlers
async def post_prompt(request: web.Request) -> web.Response:
    fake = _state(request)
    body = await request.json()
    graph = body.get("prompt")
    if not isinstance(graph, dict) or not graph:
        return web.json_response(
            {
                "error": {
                    "type": "invalid_prompt",
                    "message": "Cannot execute because the prompt is empty",
                    "details": "",
                    "extra_info": {},
                },
                "node_errors": {},
            },
            status=400,
        )
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return web.json_response(
                {
                    "error": {
                        "type": "invalid_prompt",
                        "message": f"Cannot execute because a node is missing the class_type property.: "
                        f"Node ID '#{node_id}'",
                        "details": "",
                        "extra_info": {},
                    },
                    "node_errors": {},
                },
                status=400,
            )
    outputs = [n for n, node in graph.items() if node["class_type"] in OUTPUT_CLASSES]
    if not outputs:
        return web.json_response(
            {
                "error": {
                    "type": "prompt_no_outputs",
                    "message": "Prompt has no outputs",
                    "details": "",
                    "extra_info": {},
                },
                "node_errors": {},
            },
            status=400,
        )
    prompt_id = str(body.get("prompt_id") or uuid.uuid4())
    extra = dict(body.get("extra_data") or {})
    if "client_id" in body:
        extra["client_id"] = body["client_id"]
    number = len(fake.history) + len(fake.pending) + (1 if fake.running else 0)
    fake.pending.append(Job(number, prompt_id, graph, extra, outputs))
    fake.wake.set()
    await fake.broadcast_status()
    return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": {}})


async def get_prompt(request: web.Request) -> web.Response:
    return web.json_response({"exec_info": {"queue_remaining": _state(request).queue_remaining()}})


async def get_queue(request: web.Request) -> web.Response:
    fake = _state(request)
    running = [fake.running.as_queue_item()] if fake.running else []
    return web.json_response({"queue_running": running, "queue_pending": [j.as_queue_item() for j in fake.pending]})


async def post_queue(request: web.Request) -> web.Response:
    fake = _state(request)
    body = await request.json()
    if body.get("clear"):
        fake.pending.clear()
    for prompt_id in body.get("delete", []):
        fake.pending = [j for j in fake.pending if j.prompt_id != prompt_id]
    return web.Response(status=200)


async def get_history(request: web.Request) -> web.Response:
    fake = _state(request)
    items = list(fake.history.items())
    max_items = request.query.get("max_items")
    if max_items:
        items = items[-int(max_items) :]
    return web.json_response(dict(items))


async def get_history_one(request: web.Request) -> web.Response:
    fake = _state(request)
    prompt_id = request.match_info["prompt_id"]
    entry = fake.history.get(prompt_id)
    return web.json_response({prompt_id: entry} if entry else {})


async def post_history(request: web.Request) -> web.Response:
    fake = _state(request)
    body = await request.json()
    if body.get("clear"):
        fake.history.clear()
    for prompt_id in body.get("delete", []):
        fake.history.pop(prompt_id, None)
    return web.Response(status=200)


async def post_interrupt(request: web.Request) -> web.Response:
    _state(request).interrupted = True
    return web.Response(status=200)


async def upload(request: web.Request) -> web.Response:
    fake = _state(request)
    reader = await request.multipart()
    fields: dict[str, str] = {}
    saved: Path | None = None
    tmp = fake.folder("temp") / f".upload-{uuid.uuid4().hex}"
    filename = ""
    async for part in reader:
        if part.name == "image" and hasattr(part, "filename"):
            filename = os.path.basename(part.filename or "upload.bin")
            with open(tmp, "wb") as fh:
                while chunk := await part.read_chunk(1 << 20):  # type: ignore[union-attr]
                    fh.write(chunk)
            saved = tmp
        elif part.name:
            fields[part.name] = (await part.text()) if hasattr(part, "text") else ""  # type: ignore[union-attr]
    if saved is None:
        return web.Response(status=400)
    folder = fake.folder(fields.get("type", "input")) / fields.get("subfolder", "")
    folder.mkdir(parents=True, exist_ok=True)
    name = filename
    if fields.get("overwrite", "").lower() not in ("true", "1"):
        stem, dot, ext = filename.rpartition(".")
        index = 1
        while (folder / name).exists():
            name = f"{stem} ({index}).{ext}" if dot else f"{filename} ({index})"
            index += 1
    os.replace(saved, folder / name)
    return web.json_response(
        {"name": name, "subfolder": fields.get("subfolder", ""), "type": fields.get("type", "input")}
    )


async def view(request: web.Request) -> web.StreamResponse:
    fake = _state(request)
    name = request.query.get("filename", "")
    if not name or "/" in name or name.startswith(".."):
        return web.Response(status=400)
    path = fake.folder(request.query.get("type", "output")) / request.query.get("subfolder", "") / name
    if not path.is_file():
        return web.Response(status=404)
    return web.FileResponse(path, chunk_size=1 << 20)


async def system_stats(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "system": {
                "os": "posix",
                "comfyui_version": "0.3.76",
                "python_version": "3.11",
                "embedded_python": False,
                "argv": ["main.py", "--cpu"],
            },
            "devices": [{"name": "cpu", "type": "cpu", "index": None}],
        }
    )


async def object_info(request: web.Request) -> web.Response:
    return web.json_response(request.app[INFO_KEY])


async def simple_json(request: web.Request) -> web.Response:
    return web.json_response({"path": request.path, "method": request.method})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    fake = _state(request)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    client_id = request.query.get("clientId") or uuid.uuid4().hex
    fake.sockets[client_id] = ws
    try:
        await ws.send_str(
            json.dumps(
                {
                    "type": "status",
                    "data": {"status": {"exec_info": {"queue_remaining": fake.queue_remaining()}}, "sid": client_id},
                }
            )
        )
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(json.dumps({"type": "echo", "data": msg.data}))
    finally:
        if fake.sockets.get(client_id) is ws:
            del fake.sockets[client_id]
    return ws


async def index(request: web.Request) -> web.Response:
    return web.Response(
        text="<!doctype html><title>ComfyUI</title><div id=app>fake comfy</div>", content_type="text/html"
    )


async def internal(request: web.Request) -> web.Response:
    return web.Response(text="server log with /home/comfy/secret/paths", content_type="text/plain")


async def fake_requests(request: web.Request) -> web.Response:
    return web.json_response(list(_state(request).requests))


async def fake_sockets(request: web.Request) -> web.Response:
    return web.json_response(sorted(_state(request).sockets))


async def fake_reset(request: web.Request) -> web.Response:
    _state(request).requests.clear()
    return web.json_response({})


INFO_KEY = web.AppKey("object_info", dict)


@web.middleware
async def record(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith("/__fake/"):
        _state(request).requests.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "query": dict(request.query),
                "headers": dict(request.headers),
            }
        )
    return await handler(request)


@web.middleware
async def origin_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """ComfyUI's create_origin_only_middleware: loopback Host with a different Origin host gets 403."""
    host = request.headers.get("Host", "")
    origin = request.headers.get("Origin")
    loopback = host.split(":")[0] in ("127.0.0.1", "localhost")
    if origin and loopback and urlsplit(origin).netloc != host:
        return web.Response(status=403)
    return await handler(request)


def create_app(
    root: Path, *, steps: int = 3, step_delay: float = 0.05, info: dict[str, Any] | None = None
) -> web.Application:
    app = web.Application(middlewares=[record, origin_only], client_max_size=1 << 40)
    fake = FakeComfy(root=root, steps=steps, step_delay=step_delay)
    app[KEY] = fake
    app[INFO_KEY] = info or {
        "LoadImage": {
            "input": {"required": {"image": [[], {"image_upload": True}]}},
            "output": ["IMAGE", "MASK"],
            "output_node": False,
        }
    }
    routes = [
        ("POST", "/prompt", post_prompt),
        ("GET", "/prompt", get_prompt),
        ("GET", "/queue", get_queue),
        ("POST", "/queue", post_queue),
        ("GET", "/history", get_history),
        ("POST", "/history", post_history),
        ("GET", "/history/{prompt_id}", get_history_one),
        ("POST", "/interrupt", post_interrupt),
        ("POST", "/free", simple_json),
        ("POST", "/upload/image", upload),
        ("POST", "/upload/mask", upload),
        ("GET", "/view", view),
        ("GET", "/system_stats", system_stats),
        ("GET", "/object_info", object_info),
        ("GET", "/ws", websocket),
        ("GET", "/users", simple_json),
        ("POST", "/users", simple_json),
        ("GET", "/settings", simple_json),
        ("POST", "/settings/{id}", simple_json),
        ("GET", "/userdata", simple_json),
        ("GET", "/userdata/{file}", simple_json),
        ("POST", "/userdata/{file}", simple_json),
        ("GET", "/view_metadata/{folder}", simple_json),
        ("GET", "/vhs/getpath", simple_json),
        ("GET", "/getpath", simple_json),
        ("GET", "/vhs/viewvideo", simple_json),
        ("GET", "/vhs/queryvideo", simple_json),
        ("GET", "/features", simple_json),
        ("GET", "/extensions", simple_json),
        ("GET", "/embeddings", simple_json),
        ("GET", "/models", simple_json),
        ("GET", "/experiment/models", simple_json),
        ("GET", "/i18n", simple_json),
        ("GET", "/global_subgraphs", simple_json),
    ]
    for method, path, handler in routes:
        for spelling in (path, "/api" + path):
            if method == "GET":
                app.router.add_get(spelling, handler)  # ComfyUI registers HEAD with every GET
            else:
                app.router.add_route(method, spelling, handler)
    for path in ("/internal/logs", "/internal/folder_paths", "/internal/files/{kind}"):
        app.router.add_get(path, internal)
    app.router.add_get("/", index)
    app.router.add_get("/assets/{tail:.*}", simple_json)
    app.router.add_get("/__fake/requests", fake_requests)
    app.router.add_post("/__fake/reset", fake_reset)
    app.router.add_get("/__fake/sockets", fake_sockets)

    async def worker_ctx(app: web.Application) -> Any:
        task = asyncio.create_task(app[KEY].worker())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for ws in list(app[KEY].sockets.values()):
            await ws.close()

    app.cleanup_ctx.append(worker_ctx)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--root", type=Path, required=True, help="folder holding input/, output/, temp/")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--step-delay", type=float, default=0.05)
    args = parser.parse_args()
    web.run_app(
        create_app(args.root, steps=args.steps, step_delay=args.step_delay),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
