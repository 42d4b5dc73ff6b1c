"""The SQLite journal: durable creates, ordered claims, compare-and-set saves, and restarts."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from wanx.errors import JournalError
from wanx.jobs.model import ACTIVE, TERMINAL, JobState, NewJob, body_hash
from wanx.jobs.store import SQLiteStore


def _new(owner: str = "", tag: str = "") -> NewJob:
    graph = {"1": {"class_type": "SaveImage", "inputs": {"tag": tag}}}
    return NewJob(str(uuid.uuid4()), owner, "client", body_hash({"prompt": graph}), graph, {"client_id": "c"}, ("1",))


async def test_create_is_idempotent_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j" / "jobs.sqlite3"
    store = await SQLiteStore.open(path)
    new = _new()
    job, created = await store.create(new)
    again, created_again = await store.create(replace(new, body_hash="other"))
    assert (created, created_again) == (True, False)
    assert again == job and again.body_hash == new.body_hash
    await store.close()
    reopened = await SQLiteStore.open(path)
    assert await reopened.get(new.prompt_id) == job
    await reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_claims_follow_submission_order_and_requeued_jobs_go_first(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "jobs.sqlite3")
    first, _ = await store.create(_new(tag="1"))
    second, _ = await store.create(_new(tag="2"))
    claimed = await store.claim_next("http://a")
    assert claimed is not None
    assert (claimed.prompt_id, claimed.state, claimed.attempts) == (first.prompt_id, JobState.SUBMITTED, 1)
    assert await store.save(replace(claimed, state=JobState.QUEUED, backend=None), expect=JobState.SUBMITTED)
    again = await store.claim_next("http://b")
    assert again is not None and (again.prompt_id, again.attempts, again.backend) == (first.prompt_id, 2, "http://b")
    other = await store.claim_next("http://a")
    assert other is not None and other.prompt_id == second.prompt_id
    assert await store.claim_next("http://c") is None
    assert [j.prompt_id for j in await store.active_on("http://b")] == [first.prompt_id]
    await store.close()


async def test_save_is_compare_and_set(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "jobs.sqlite3")
    job, _ = await store.create(_new())
    done = replace(job, state=JobState.SUCCEEDED, finished_at=1.0)
    assert await store.save(done, expect=JobState.QUEUED)
    assert not await store.save(replace(job, state=JobState.FAILED), expect=JobState.QUEUED)
    assert (await store.get(job.prompt_id)).state is JobState.SUCCEEDED  # type: ignore[union-attr]
    await store.close()


async def test_outputs_index_history_paging_and_delete_by_owner(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "jobs.sqlite3")
    mine, _ = await store.create(_new(owner="ann"))
    theirs, _ = await store.create(_new(owner="bo"))
    history = {"outputs": {"9": {"gifs": [{"filename": "v_00001_.mp4", "subfolder": "", "type": "output"}]}}}
    for number, job in enumerate((mine, theirs)):
        done = replace(job, state=JobState.SUCCEEDED, backend="http://a", history=history, finished_at=float(number))
        assert await store.save(done, expect=JobState.QUEUED)
    maker = await store.output_owner("v_00001_.mp4", "", "output")
    assert maker is not None and maker.prompt_id == theirs.prompt_id  # the newest maker wins
    assert await store.output_owner("v_00001_.mp4", "", "temp") is None
    assert [j.prompt_id for j in await store.jobs(TERMINAL, owner="ann")] == [mine.prompt_id]
    assert [j.prompt_id for j in await store.jobs(TERMINAL)] == [mine.prompt_id, theirs.prompt_id]
    assert await store.count(ACTIVE) == 0 and await store.count(TERMINAL) == 2
    assert await store.delete([theirs.prompt_id], owner="ann") == 0
    assert await store.delete([theirs.prompt_id], owner="bo") == 1
    maker = await store.output_owner("v_00001_.mp4", "", "output")
    assert maker is not None and maker.prompt_id == mine.prompt_id
    await store.close()


async def test_meta_is_set_once(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "jobs.sqlite3")
    assert await store.meta("client_id", lambda: "first") == "first"
    assert await store.meta("client_id", lambda: "second") == "first"
    await store.close()


async def test_unusable_journal_path_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(JournalError, match="cannot open the job journal"):
        await SQLiteStore.open(tmp_path / "file" / "jobs.sqlite3")


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(JournalError, match="newer than this wanx"):
        await SQLiteStore.open(path)
