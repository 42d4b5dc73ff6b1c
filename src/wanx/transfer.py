"""Move bytes and hash them on the way: HTTP through huggingface_hub's session and backoff, local copies, files.

Hashing runs in its own thread on batches of chunks (hashlib releases the GIL), so receiving, writing and hashing
overlap; huggingface_hub's ``http_get`` re-chunks into 10 MiB pieces and resumes only at those boundaries, which
halves throughput on a loaded two-core box, so the body is read raw here (``bench/fetch.py`` measures it).
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from wanx.errors import DiskFullError, SourceUnavailable
from wanx.sources import Origin

__all__ = ["CHUNK", "Cancelled", "HashingWriter", "hash_file", "hash_prefix", "receive"]

CHUNK = 8 * 1024 * 1024
HASH_BATCH = 8 * 1024 * 1024
PROGRESS_STEP = 1024 * 1024  # report progress per MiB, not per 64 KiB chunk
RETRIES = 5  # attempts without progress before a source is given up (reset whenever bytes arrive)
RETRY_WAIT_S = 1.0
READ_TIMEOUT_S = 30.0
Progress = Callable[[int], None]


class Cancelled(Exception):
    """Raised inside a transfer when the user pressed Ctrl-C; the partial file stays for the next run."""


class _Hasher:
    """sha256 fed from a bounded queue by a worker thread, in batches, so the reader rarely waits on hashing."""

    def __init__(self, initial: Any | None = None) -> None:
        self._sha = initial if initial is not None else hashlib.sha256()
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=4)
        self._batch: list[bytes] = []
        self._batched = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            for chunk in batch:
                self._sha.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= HASH_BATCH:
            self._queue.put(self._batch)
            self._batch, self._batched = [], 0

    def finish(self) -> Any:
        if self._batch:
            self._queue.put(self._batch)
        self._queue.put(None)
        self._thread.join()
        return self._sha


class HashingWriter:
    """The sink for one transfer: writes to the partial file, hashes, reports progress, honours cancel."""

    def __init__(
        self, path: Path, *, offset: int, sha: Any, progress: Progress, cancel: threading.Event, label: str
    ) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(self._fd, offset)
        os.lseek(self._fd, offset, os.SEEK_SET)
        self._hasher = _Hasher(sha)
        self._progress = progress
        self._cancel = cancel
        self._label = label
        self.written = offset
        self._unreported = 0

    def write(self, chunk: bytes) -> int:
        if self._cancel.is_set():
            raise Cancelled(self._label)
        try:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(
                    f"{self._label}: the disk is full after {self.written} bytes",
                    hint="Free space on the models volume and run the command again; the download resumes.",
                ) from exc
            raise
        self._hasher.update(chunk)
        self.written += len(chunk)
        self._unreported += len(chunk)
        if self._unreported >= PROGRESS_STEP:
            self._progress(self._unreported)
            self._unreported = 0
        return len(chunk)

    def restart(self) -> None:
        """The server ignored Range and sends everything again: drop what we had and hash from zero."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hasher.finish()
        self._hasher = _Hasher()
        self._progress(self._unreported - self.written)
        self.written = self._unreported = 0

    def finish(self) -> str:
        """fsync and close the file, wait for the hash; return the hex sha256."""
        self._progress(self._unreported)
        self._unreported = 0
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
        return cast(str, self._hasher.finish().hexdigest())

    def abort(self) -> None:
        os.close(self._fd)
        self._hasher.finish()


def receive(origin: Origin, writer: HashingWriter, *, expected_size: int | None) -> None:
    """Stream ``origin`` into ``writer`` from ``writer.written`` on, resuming with Range after a dropped connection.

    Raises:
        SourceUnavailable: 404 or another refusal, repeated failures without progress, or a body of the wrong length.
    """
    if origin.local is not None:
        _copy_local(origin.local, writer)
        return
    import httpx2  # imported on first network use, like in wanx.sources

    failures = 0
    while expected_size is None or writer.written < expected_size:
        before = writer.written
        try:
            _get(origin, writer)
        except httpx2.TransportError as exc:
            failures = 0 if writer.written > before else failures + 1
            if failures >= RETRIES:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise SourceUnavailable(f"{origin.label}: transfer failed {RETRIES} times ({reason})") from exc
            time.sleep(RETRY_WAIT_S)
            continue
        if expected_size is None or writer.written == expected_size or writer.written == before:
            break
    if expected_size is not None and writer.written != expected_size:
        raise SourceUnavailable(f"{origin.label}: sent {writer.written} bytes, expected {expected_size}")


def _get(origin: Origin, writer: HashingWriter) -> None:
    """One GET from ``writer.written`` on; 408/429 are retried with backoff by huggingface_hub."""
    from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError
    from huggingface_hub.utils._http import hf_raise_for_status, http_stream_backoff

    assert origin.url is not None
    headers = {**origin.headers, "Accept-Encoding": "identity"}
    if writer.written:
        headers["Range"] = f"bytes={writer.written}-"
    stream = http_stream_backoff(
        "GET",
        origin.url,
        headers=headers,
        timeout=READ_TIMEOUT_S,
        retry_on_exceptions=(),
        retry_on_status_codes=(408, 429),
    )
    with stream as response:
        try:
            hf_raise_for_status(response)
        except RemoteEntryNotFoundError as exc:
            raise SourceUnavailable(f"{origin.label}: not found on the server (404)") from exc
        except HfHubHTTPError as exc:
            raise SourceUnavailable(f"{origin.label}: the server answered HTTP {response.status_code}") from exc
        if writer.written and response.status_code == 200:
            writer.restart()
        for chunk in response.iter_raw():
            writer.write(chunk)


def hash_prefix(path: Path, length: int, progress: Progress | None = None) -> Any:
    """A sha256 object fed with the first ``length`` bytes of ``path`` (to resume hashing a partial file)."""
    sha = hashlib.sha256()
    if length <= 0:
        return sha
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    left = length
    with open(path, "rb", buffering=0) as fh:
        while left > 0:
            n = fh.readinto(view[: min(CHUNK, left)])
            if not n:
                break
            sha.update(view[:n])
            left -= n
            if progress is not None:
                progress(n)
    return sha


def hash_file(path: Path, progress: Progress | None = None) -> str:
    """Hex sha256 of the whole file."""
    return cast(str, hash_prefix(path, path.stat().st_size, progress).hexdigest())


def _copy_local(source: Path, writer: HashingWriter) -> None:
    with open(source, "rb", buffering=0) as fh:
        fh.seek(writer.written)
        while chunk := fh.read(CHUNK):
            writer.write(chunk)
