"""A model-hub stand-in on 127.0.0.1 that speaks what huggingface_hub sends and expects.

Routes (one server plays Hugging Face, an hf mirror, ModelScope and a plain file server):
  HEAD/GET /{owner}/{repo}/resolve/{rev}/{path}          Hugging Face and mirrors (X-Repo-Commit, X-Linked-Etag,
                                                         X-Linked-Size, ETag, Content-Length, Range -> 206)
  HEAD/GET /models/{owner}/{repo}/resolve/{rev}/{path}   ModelScope
  HEAD/GET /files/{path}                                 a plain HTTPS-style file server
  POST     /api/models/{owner}/{repo}/paths-info/{rev}   form ``paths`` -> [{type, path, size, oid, lfs}]
  GET      /__fake/requests                              what was received (method, path, range)
404s carry ``X-Error-Code: EntryNotFound`` / ``RevisionNotFound`` / ``RepoNotFound`` like the hub. No xet headers
are ever sent, so huggingface_hub uses plain HTTP. Knobs per file: missing, status codes, slow, cut, wrong bytes,
ignore Range, redirect to a CDN path. Run as a script to serve a folder in its own process (bench, subprocess tests).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

STREAM_CHUNK = 64 * 1024


@dataclass
class Knobs:
    missing: bool = False  # 404 EntryNotFound
    statuses: list[int] = field(default_factory=list)  # answer these statuses first (one per request), then serve
    slow_s: float = 0.0  # sleep after each 64 KiB chunk ...
    slow_after: int = 0  # ... once this many body bytes were sent
    cut_after: int | None = None  # close the connection after this many body bytes ...
    cut_times: int = 1  # ... on this many GET requests
    wrong_bytes: bool = False  # serve different bytes under the right ETag and size
    ignore_range: bool = False  # answer 200 with the whole body to a Range request
    redirect: bool = False  # resolve answers 302 to /__cdn/{sha256} on the same host, like the hub's CDN


@dataclass
class HubFile:
    repo: str
    path: str
    disk: Path
    size: int
    sha256: str
    blob_id: str
    knobs: Knobs = field(default_factory=Knobs)


@dataclass
class Repo:
    commit: str
    branches: tuple[str, ...] = ("main", "master")


class FakeHub:
    """Files registered with ``add`` are written under ``root`` and served on every route."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.repos: dict[str, Repo] = {}
        self.files: dict[tuple[str, str], HubFile] = {}
        self.by_sha: dict[str, HubFile] = {}
        self.plain: dict[str, HubFile] = {}
        self.requests: list[dict[str, str | None]] = []

    def add(
        self,
        repo: str,
        path: str,
        data: bytes | None = None,
        *,
        disk: Path | None = None,
        commit: str | None = None,
        alias: str | None = None,
    ) -> HubFile:
        """Register a file (bytes, or a file on disk) in ``repo`` at ``path``; also served at /files/{alias or path}."""
        if disk is None:
            assert data is not None
            disk = self.root / repo / path
            disk.parent.mkdir(parents=True, exist_ok=True)
            disk.write_bytes(data)
        sha = _sha256(disk)
        blob = hashlib.sha1(f"{repo}/{path}".encode()).hexdigest()
        self.repos.setdefault(repo, Repo(commit=commit or hashlib.sha1(repo.encode()).hexdigest()))
        hub_file = HubFile(repo=repo, path=path, disk=disk, size=disk.stat().st_size, sha256=sha, blob_id=blob)
        self.files[(repo, path)] = hub_file
        self.by_sha[sha] = hub_file
        self.plain[alias or path] = hub_file
        return hub_file

    def knobs(self, repo: str, path: str) -> Knobs:
        return self.files[(repo, path)].knobs

    def ranges(self, path_suffix: str) -> list[str | None]:
        """The Range headers of the GET requests whose path ends with ``path_suffix``."""
        return [r["range"] for r in self.requests if r["method"] == "GET" and str(r["path"]).endswith(path_suffix)]

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/__fake/requests", self._requests)
        app.router.add_post("/api/models/{owner}/{name}/paths-info/{rev}", self._paths_info)
        app.router.add_route("*", "/__cdn/{sha}", self._cdn)
        app.router.add_route("*", "/files/{path:.+}", self._plain)
        app.router.add_route("*", "/models/{owner}/{name}/resolve/{rev}/{path:.+}", self._resolve)
        app.router.add_route("*", "/{owner}/{name}/resolve/{rev}/{path:.+}", self._resolve)
        return app

    # ------------------------------------------------------------ handlers

    async def _requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.requests)

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        repo_id = f"{request.match_info['owner']}/{request.match_info['name']}"
        repo = self.repos.get(repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", f"Repository Not Found for url: {request.url}.")
        rev = request.match_info["rev"]
        if rev not in (repo.commit, *repo.branches):
            return _error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        hub_file = self.files.get((repo_id, request.match_info["path"]))
        if hub_file is None or hub_file.knobs.missing:
            return _error(404, "EntryNotFound", f"Entry not found for url: {request.url}.")
        early = _early_status(hub_file)
        if early is not None:
            return early
        headers = {
            "X-Repo-Commit": repo.commit,
            "X-Linked-Etag": f'"{hub_file.sha256}"',
            "X-Linked-Size": str(hub_file.size),
            "ETag": f'"{hub_file.sha256}"',
            "Accept-Ranges": "bytes",
        }
        if hub_file.knobs.redirect:
            headers["Location"] = f"/__cdn/{hub_file.sha256}"
            return web.Response(status=302, headers=headers)
        return await _serve(request, hub_file, headers)

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        hub_file = self.by_sha.get(request.match_info["sha"])
        if hub_file is None:
            return _error(404, "EntryNotFound", "no such blob")
        return await _serve(request, hub_file, {"ETag": f'"{hub_file.sha256}"', "Accept-Ranges": "bytes"})

    async def _plain(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        hub_file = self.plain.get(request.match_info["path"])
        if hub_file is None or hub_file.knobs.missing:
            return web.Response(status=404, text="not found")
        early = _early_status(hub_file)
        if early is not None:
            return early
        return await _serve(request, hub_file, {"Accept-Ranges": "bytes"})

    async def _paths_info(self, request: web.Request) -> web.Response:
        self._record(request)
        repo_id = f"{request.match_info['owner']}/{request.match_info['name']}"
        repo = self.repos.get(repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", "Repository not found")
        if request.match_info["rev"] not in (repo.commit, *repo.branches):
            return _error(404, "RevisionNotFound", "Invalid rev id")
        form = await request.post()
        out = []
        for path in form.getall("paths", []):
            hub_file = self.files.get((repo_id, str(path)))
            if hub_file is None or hub_file.knobs.missing:
                continue  # the hub ignores paths that do not exist
            out.append(
                {
                    "type": "file",
                    "oid": hub_file.blob_id,
                    "size": hub_file.size,
                    "path": hub_file.path,
                    "lfs": {"oid": hub_file.sha256, "size": hub_file.size, "pointerSize": 134},
                }
            )
        return web.json_response(out)

    def _record(self, request: web.Request) -> None:
        self.requests.append({"method": request.method, "path": request.path, "range": request.headers.get("Range")})


def _error(status: int, code: str, message: str) -> web.Response:
    headers = {"X-Error-Code": code, "X-Error-Message": message}
    return web.json_response({"error": message}, status=status, headers=headers)


def _early_status(hub_file: HubFile) -> web.Response | None:
    if hub_file.knobs.statuses:
        status = hub_file.knobs.statuses.pop(0)
        headers = {"Retry-After": "0"} if status == 429 else {}
        return web.Response(status=status, text=f"fake status {status}", headers=headers)
    return None


async def _serve(request: web.Request, hub_file: HubFile, headers: dict[str, str]) -> web.StreamResponse:
    try:
        return await _serve_body(request, hub_file, headers)
    except ConnectionResetError:  # the client went away (killed fetch): nothing to answer
        return web.Response(status=499)


async def _serve_body(request: web.Request, hub_file: HubFile, headers: dict[str, str]) -> web.StreamResponse:
    knobs = hub_file.knobs
    plain = not (knobs.slow_s or knobs.cut_after is not None or knobs.wrong_bytes or knobs.ignore_range)
    if plain:  # sendfile, Range and HEAD handled by aiohttp: what the bench measures against curl
        response = web.FileResponse(hub_file.disk, headers=headers)
        return response
    start = 0
    range_header = request.headers.get("Range")
    if range_header and not knobs.ignore_range:
        start = int(range_header.removeprefix("bytes=").split("-", 1)[0])
    length = hub_file.size - start
    response = web.StreamResponse(status=206 if start else 200, headers=headers)
    response.content_length = length
    if start:
        response.headers["Content-Range"] = f"bytes {start}-{hub_file.size - 1}/{hub_file.size}"
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    cut = knobs.cut_after if knobs.cut_after is not None and knobs.cut_times > 0 else None
    if cut is not None:
        knobs.cut_times -= 1
    sent = 0
    with open(hub_file.disk, "rb") as fh:
        fh.seek(start)
        while chunk := fh.read(STREAM_CHUNK):
            if knobs.wrong_bytes:
                chunk = bytes(b ^ 0xFF for b in chunk[:1]) + chunk[1:]
            if cut is not None and sent + len(chunk) > cut:
                await response.write(chunk[: cut - sent])
                request.transport.close()  # type: ignore[union-attr]
                return response
            await response.write(chunk)
            sent += len(chunk)
            if knobs.slow_s and sent >= knobs.slow_after:
                await asyncio.sleep(knobs.slow_s)
    await response.write_eof()
    return response


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True, help="folder of <owner>/<repo>/<path> files to serve")
    parser.add_argument("--commit", default="0" * 40)
    parser.add_argument("--lifetime", type=float, default=900.0, help="stop by itself after this many seconds")
    args = parser.parse_args()
    hub = FakeHub(args.root)
    for disk in sorted(p for p in args.root.rglob("*") if p.is_file()):
        owner, name, *rest = disk.relative_to(args.root).parts
        hub.add(f"{owner}/{name}", "/".join(rest), disk=disk, commit=args.commit)
    print(json.dumps({"files": len(hub.files)}), flush=True)

    async def serve() -> None:
        runner = web.AppRunner(hub.make_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", args.port).start()
        await asyncio.sleep(args.lifetime)
        await runner.cleanup()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
