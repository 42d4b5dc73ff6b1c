"""The job record kept in the journal, and the states it moves through."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "Job",
    "JobState",
    "NewJob",
    "body_hash",
    "is_prompt_id",
    "queue_item",
]


class JobState(StrEnum):
    """``queued`` in the journal only; ``submitted`` recorded before the POST to a backend; ``running`` once
    the backend answered 200; then one terminal state."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    POISONED = "poisoned"
    CANCELLED = "cancelled"


ACTIVE = frozenset({JobState.SUBMITTED, JobState.RUNNING})
TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.POISONED, JobState.CANCELLED})

# ComfyUI (v0.25+) accepts only the canonical lowercase hyphenated form; we enforce it at our pin too.
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_prompt_id(value: object) -> bool:
    """True for a canonical lowercase UUID string."""
    return isinstance(value, str) and _UUID.match(value) is not None


def body_hash(body: dict[str, Any]) -> str:
    """A stable digest of a request body: same JSON value, same digest (key order does not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewJob:
    """What ``POST /prompt`` hands the journal."""

    prompt_id: str
    owner: str
    client_id: str | None
    body_hash: str
    graph: dict[str, Any]
    extra_data: dict[str, Any]
    outputs_to_execute: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Job:
    """One accepted prompt. ``seq`` is the gateway's queue number (ComfyUI's ``number``)."""

    prompt_id: str
    seq: int
    owner: str
    client_id: str | None
    body_hash: str
    graph: dict[str, Any]
    extra_data: dict[str, Any]
    outputs_to_execute: tuple[str, ...]
    state: JobState = JobState.QUEUED
    backend: str | None = None
    attempts: int = 0
    crashes: int = 0
    error: str = ""
    history: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def accepted_answer(self) -> dict[str, Any]:
        """The 200 body of ``POST /prompt``, replayed verbatim for a duplicate submission."""
        return {"prompt_id": self.prompt_id, "number": self.seq, "node_errors": {}}

    def wanx_status(self) -> dict[str, Any]:
        """The gateway's own view of the job, added to history entries under ``wanx``."""
        return {
            "state": self.state.value,
            "attempts": self.attempts,
            "crashes": self.crashes,
            "backend": self.backend,
            "error": self.error,
        }


def queue_item(job: Job) -> list[Any]:
    """ComfyUI's queue item: ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``."""
    return [job.seq, job.prompt_id, job.graph, job.extra_data, list(job.outputs_to_execute)]
