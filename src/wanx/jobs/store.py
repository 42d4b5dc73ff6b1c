"""The journal: a small ``JobStore`` interface and its embedded SQLite implementation (WAL, fsync per commit)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from wanx.errors import JournalError
from wanx.jobs.model import ACTIVE, TERMINAL, Job, JobState, NewJob

__all__ = ["JobStore", "SQLiteStore"]

T = TypeVar("T")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    client_id TEXT,
    body_hash TEXT NOT NULL,
    graph TEXT NOT NULL,
    extra_data TEXT NOT NULL,
    outputs_to_execute TEXT NOT NULL,
    state TEXT NOT NULL,
    backend TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    history TEXT,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_backend ON jobs (backend, state);
CREATE TABLE IF NOT EXISTS outputs (
    filename TEXT NOT NULL,
    subfolder TEXT NOT NULL,
    type TEXT NOT NULL,
    prompt_id TEXT NOT NULL REFERENCES jobs (prompt_id) ON DELETE CASCADE,
    PRIMARY KEY (filename, subfolder, type, prompt_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = (
    "seq, prompt_id, owner, client_id, body_hash, graph, extra_data, outputs_to_execute, state, backend, "
    "attempts, crashes, error, history, created_at, finished_at"
)


class JobStore(Protocol):
    """What the runners and the API need from a journal. Every write is durable when it returns."""

    async def create(self, new: NewJob) -> tuple[Job, bool]:
        """Insert ``new``; return ``(job, True)``, or ``(existing, False)`` if the id is already taken."""
        ...

    async def get(self, prompt_id: str) -> Job | None: ...

    async def claim_next(self, backend: str) -> Job | None:
        """Move the oldest queued job to ``submitted`` on ``backend`` (attempts + 1), atomically."""
        ...

    async def save(self, job: Job, *, expect: JobState) -> bool:
        """Write ``job`` if its stored state is still ``expect`` (compare-and-set); False otherwise."""
        ...

    async def active_on(self, backend: str) -> list[Job]: ...

    async def jobs(
        self, states: Iterable[JobState], *, owner: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Job]:
        """Jobs in ``states``: active ones by ``seq``, terminal ones by finishing order."""
        ...

    async def count(self, states: Iterable[JobState]) -> int: ...

    async def delete(self, prompt_ids: Sequence[str], *, owner: str | None = None) -> int:
        """Remove terminal jobs (``POST /history`` delete); returns how many went."""
        ...

    async def output_owner(self, filename: str, subfolder: str, kind: str) -> Job | None:
        """The newest finished job whose history lists this output file."""
        ...

    async def meta(self, key: str, default: Callable[[], str]) -> str:
        """A persistent setting; ``default()`` is stored on first use."""
        ...

    async def close(self) -> None: ...


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        prompt_id=row["prompt_id"],
        seq=row["seq"],
        owner=row["owner"],
        client_id=row["client_id"],
        body_hash=row["body_hash"],
        graph=json.loads(row["graph"]),
        extra_data=json.loads(row["extra_data"]),
        outputs_to_execute=tuple(json.loads(row["outputs_to_execute"])),
        state=JobState(row["state"]),
        backend=row["backend"],
        attempts=row["attempts"],
        crashes=row["crashes"],
        error=row["error"],
        history=json.loads(row["history"]) if row["history"] else None,
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


def _output_files(history: dict[str, Any] | None) -> set[tuple[str, str, str]]:
    files: set[tuple[str, str, str]] = set()
    outputs = (history or {}).get("outputs") or {}
    for node_output in outputs.values() if isinstance(outputs, dict) else ():
        for items in node_output.values() if isinstance(node_output, dict) else ():
            for item in items if isinstance(items, list) else ():
                if isinstance(item, dict) and isinstance(item.get("filename"), str):
                    files.add((item["filename"], str(item.get("subfolder") or ""), str(item.get("type") or "output")))
    return files


class SQLiteStore:
    """SQLite in WAL mode with ``synchronous=FULL``: a commit is fsync'd before the call returns.

    All statements run on one private thread, so the event loop never waits on the disk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wanx-journal")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path) -> SQLiteStore:
        store = cls(path)
        await store._run(store._connect)
        return store

    # ------------------------------------------------------------------ plumbing
    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise JournalError(
                    f"{self.path}: SQLite refused WAL mode (got {mode!r}); put the journal on a local disk"
                )
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"{self.path}: journal schema version {version} is newer than this wanx ({SCHEMA_VERSION})",
                    hint="Upgrade wanx, or point --journal at another file.",
                )
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as e:
            raise JournalError(f"{self.path}: cannot open the job journal: {e}") from e
        self._db = db

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError(f"{self.path}: the job journal is closed")
        return self._db

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as e:
            raise JournalError(f"{self.path}: journal write failed: {e}") from e
        return result

    def _select(self, sql: str, args: Sequence[Any] = ()) -> list[Job]:
        return [_row_to_job(row) for row in self._conn().execute(sql, args)]

    # ------------------------------------------------------------------ interface
    async def create(self, new: NewJob) -> tuple[Job, bool]:
        def insert(db: sqlite3.Connection) -> tuple[Job, bool]:
            found = self._select(f"SELECT {_COLUMNS} FROM jobs WHERE prompt_id = ?", (new.prompt_id,))
            if found:
                return found[0], False
            db.execute(
                "INSERT INTO jobs (prompt_id, owner, client_id, body_hash, graph, extra_data, outputs_to_execute,"
                " state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.prompt_id,
                    new.owner,
                    new.client_id,
                    new.body_hash,
                    json.dumps(new.graph),
                    json.dumps(new.extra_data),
                    json.dumps(list(new.outputs_to_execute)),
                    JobState.QUEUED.value,
                    time.time(),
                ),
            )
            return self._select(f"SELECT {_COLUMNS} FROM jobs WHERE prompt_id = ?", (new.prompt_id,))[0], True

        return await self._run(lambda: self._write(insert))

    async def get(self, prompt_id: str) -> Job | None:
        found = await self._run(lambda: self._select(f"SELECT {_COLUMNS} FROM jobs WHERE prompt_id = ?", (prompt_id,)))
        return found[0] if found else None

    async def claim_next(self, backend: str) -> Job | None:
        def claim(db: sqlite3.Connection) -> Job | None:
            queued = self._select(
                f"SELECT {_COLUMNS} FROM jobs WHERE state = ? ORDER BY seq LIMIT 1", (JobState.QUEUED.value,)
            )
            if not queued:
                return None
            job = replace(queued[0], state=JobState.SUBMITTED, backend=backend, attempts=queued[0].attempts + 1)
            db.execute(
                "UPDATE jobs SET state = ?, backend = ?, attempts = ? WHERE prompt_id = ?",
                (job.state.value, backend, job.attempts, job.prompt_id),
            )
            return job

        return await self._run(lambda: self._write(claim))

    async def save(self, job: Job, *, expect: JobState) -> bool:
        def update(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE jobs SET state = ?, backend = ?, attempts = ?, crashes = ?, error = ?, history = ?,"
                " finished_at = ? WHERE prompt_id = ? AND state = ?",
                (
                    job.state.value,
                    job.backend,
                    job.attempts,
                    job.crashes,
                    job.error,
                    json.dumps(job.history) if job.history is not None else None,
                    job.finished_at,
                    job.prompt_id,
                    expect.value,
                ),
            )
            if cursor.rowcount != 1:
                return False
            db.executemany(
                "INSERT OR IGNORE INTO outputs (filename, subfolder, type, prompt_id) VALUES (?, ?, ?, ?)",
                [(*item, job.prompt_id) for item in _output_files(job.history)],
            )
            return True

        return await self._run(lambda: self._write(update))

    async def active_on(self, backend: str) -> list[Job]:
        states = [s.value for s in ACTIVE]
        return await self._run(
            lambda: self._select(
                f"SELECT {_COLUMNS} FROM jobs WHERE backend = ? AND state IN (?, ?) ORDER BY seq", (backend, *states)
            )
        )

    async def jobs(
        self, states: Iterable[JobState], *, owner: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Job]:
        wanted = sorted({JobState(s) for s in states})
        if not wanted:
            return []
        terminal = all(s in TERMINAL for s in wanted)
        where = f"state IN ({', '.join('?' for _ in wanted)})"
        args: list[Any] = [s.value for s in wanted]
        if owner is not None:
            where += " AND owner = ?"
            args.append(owner)
        order = "finished_at, seq" if terminal else "seq"
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE {where} ORDER BY {order}"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            args += [-1 if limit is None else limit, offset]
        return await self._run(lambda: self._select(sql, args))

    async def count(self, states: Iterable[JobState]) -> int:
        wanted = [JobState(s).value for s in states]
        sql = f"SELECT count(*) FROM jobs WHERE state IN ({', '.join('?' for _ in wanted)})"
        return await self._run(lambda: int(self._conn().execute(sql, wanted).fetchone()[0]) if wanted else 0)

    async def delete(self, prompt_ids: Sequence[str], *, owner: str | None = None) -> int:
        states = [s.value for s in TERMINAL]

        def remove(db: sqlite3.Connection) -> int:
            count = 0
            for prompt_id in prompt_ids:
                sql = f"DELETE FROM jobs WHERE prompt_id = ? AND state IN ({', '.join('?' for _ in states)})"
                args: list[Any] = [prompt_id, *states]
                if owner is not None:
                    sql += " AND owner = ?"
                    args.append(owner)
                count += db.execute(sql, args).rowcount
            return count

        return await self._run(lambda: self._write(remove))

    async def output_owner(self, filename: str, subfolder: str, kind: str) -> Job | None:
        sql = (
            f"SELECT {', '.join('j.' + c.strip() for c in _COLUMNS.split(','))} FROM outputs o"
            " JOIN jobs j ON j.prompt_id = o.prompt_id"
            " WHERE o.filename = ? AND o.subfolder = ? AND o.type = ? ORDER BY j.finished_at DESC LIMIT 1"
        )
        found = await self._run(lambda: self._select(sql, (filename, subfolder, kind)))
        return found[0] if found else None

    async def meta(self, key: str, default: Callable[[], str]) -> str:
        def read_or_init(db: sqlite3.Connection) -> str:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return str(row[0])
            value = default()
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            return value

        return await self._run(lambda: self._write(read_or_init))

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await self._run(shut)
        self._pool.shutdown(wait=True)
