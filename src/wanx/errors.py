"""Every error wanx raises on purpose, grouped by what the caller can do about it.

Each class has a snake_case ``code`` that is never reused, and a ``hint`` telling the user what to do.
Messages follow the house shape: ``<subject>: <what is wrong> (expected X, got Y)``; the hint is the fix.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "JournalError",
    "UsageError",
    "WanxError",
]


class WanxError(Exception):
    """Base class. ``code`` identifies the failure; ``hint`` says what to do next."""

    code: str = "wanx_error"
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------- GENERAL


class UsageError(WanxError, ValueError):
    """A command was called with arguments that cannot work together."""

    code = "usage_error"


class ConfigError(WanxError, ValueError):
    """A configuration value (environment variable, flag, settings file) is invalid."""

    code = "config_error"


# ---------------------------------------------------------------- MODELS (lockfile, sources, fetch)


# ---------------------------------------------------------------- GATEWAY (tokens, policy, proxy)


# ---------------------------------------------------------------- WORKFLOWS (schema, check, params, client)


# ---------------------------------------------------------------- RUNTIME (install, doctor, up)


# ---------------------------------------------------------------- JOBS (journal, runners)


class JournalError(WanxError, OSError):
    """The job journal cannot be opened or written; accepted jobs would not be durable."""

    code = "journal_error"
    hint = "Check that the journal's folder is on a local, writable disk with free space."


class BackendUnavailable(WanxError, ConnectionError):
    """A ComfyUI backend did not answer (down, restarting, or unreachable)."""

    code = "backend_unavailable"
    hint = "Jobs wait in the journal until the backend answers again; check that ComfyUI is running."
