"""Move bytes and hash them on the way: HTTP through huggingface_hub's resumable ``http_get``, local copies, files.

Hashing runs in its own thread (hashlib releases the GIL), so receiving and hashing overlap on two cores.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from wanx.errors import DiskFullError, SourceUnavailable
from wanx.sources import Origin

__all__ = ["CHUNK", "Cancelled", "HashingWriter", "hash_file", "hash_prefix", "receive"]

CHUNK = 8 * 1024 * 1024
Progress = Callable[[int], None]


class Cancelled(Exception):
    """Raised inside a transfer when the user pressed Ctrl-C; the partial file stays for the next run."""


class _Hasher:
    """sha256 fed from a bounded queue by a worker thread, so the producer never waits on hashing for long."""

    def __init__(self, initial: Any | None = None) -> None:
        self._sha = initial if initial is not None else hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._sha.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def finish(self) -> Any:
        self._queue.put(None)
        self._thread.join()
        return self._sha


class HashingWriter:
    """A file-like sink for ``http_get``: writes to the partial file, hashes, reports progress, honours cancel."""

    def __init__(
        self, path: Path, *, offset: int, sha: Any, progress: Progress, cancel: threading.Event, label: str
    ) -> None:
        self.path = path
        self._file = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 (closed in finish/abort)
        self._file.seek(offset)
        self._file.truncate()
        self._hasher = _Hasher(sha)
        self._progress = progress
        self._cancel = cancel
        self._label = label
        self.written = offset

    def write(self, chunk: bytes) -> int:
        if self._cancel.is_set():
            raise Cancelled(self._label)
        try:
            self._file.write(chunk)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(
                    f"{self._label}: the disk is full after {self.written} bytes",
                    hint="Free space on the models volume and run the command again; the download resumes.",
                ) from exc
            raise
        self._hasher.update(chunk)
        self.written += len(chunk)
        self._progress(len(chunk))
        return len(chunk)

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        """``http_get`` truncates when a server ignores Range: restart the hash over what is kept."""
        kept = self._file.truncate(size)
        self._hasher.finish()
        self._file.flush()
        self._hasher = _Hasher(hash_prefix(self.path, kept))
        self._progress(kept - self.written)
        self.written = kept
        return kept

    def finish(self) -> str:
        """Flush and fsync the file, wait for the hash; return the hex sha256."""
        try:
            self._file.flush()
            _fsync(self._file)
        finally:
            self._file.close()
        return cast(str, self._hasher.finish().hexdigest())

    def abort(self) -> None:
        self._file.close()
        self._hasher.finish()


def receive(origin: Origin, writer: HashingWriter, *, expected_size: int | None) -> None:
    """Stream ``origin`` into ``writer`` from ``writer.written`` on (Range resume, retries: huggingface_hub).

    Raises:
        SourceUnavailable: 404, refused, repeated connection failures, or a short body.
    """
    if origin.local is not None:
        _copy_local(origin.local, writer)
        return
    assert origin.url is not None
    import httpx2  # imported on first network use, like in wanx.sources
    from huggingface_hub import file_download
    from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError

    try:
        file_download.http_get(
            origin.url,
            cast(BinaryIO, writer),
            resume_size=writer.written,
            headers=dict(origin.headers),
            expected_size=expected_size,
            tqdm_class=cast(Any, _NoBar),
        )
    except RemoteEntryNotFoundError as exc:
        raise SourceUnavailable(f"{origin.label}: not found on the server (404)") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise SourceUnavailable(f"{origin.label}: the server answered HTTP {status}") from exc
    except httpx2.HTTPError as exc:
        raise SourceUnavailable(f"{origin.label}: transfer failed ({' '.join(str(exc).split())})") from exc
    except OSError as exc:
        if "Consistency check failed" in str(exc):  # http_get's size check: the body ended early or ran long
            raise SourceUnavailable(f"{origin.label}: sent {writer.written} bytes, expected {expected_size}") from exc
        raise


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


def _fsync(fh: BinaryIO) -> None:
    os.fsync(fh.fileno())


class _NoBar:
    """Stands in for tqdm inside ``http_get``: wanx draws its own progress from the writer."""

    def __init__(self, **_: Any) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def update(self, _n: int = 1) -> None:
        return None
