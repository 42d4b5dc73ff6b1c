"""Every error wanx raises on purpose, grouped by what the caller can do about it.

Each class has a snake_case ``code`` that is never reused, and a ``hint`` telling the user what to do.
Messages follow the house shape: ``<subject>: <what is wrong> (expected X, got Y)``; the hint is the fix.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EnvFileError",
    "PreflightFailed",
    "StackCommandFailed",
    "StackNotReady",
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


# runtime: the image, `wanx doctor` and `wanx up` (docker compose / podman-compose)


class EnvFileError(WanxError, ValueError):
    """The stack's ``.env`` file cannot be read or has a line that is not ``NAME=value``."""

    code = "env_file_invalid"


class PreflightFailed(WanxError, RuntimeError):
    """``wanx doctor`` found a check that fails: the stack would not start or not work on this host."""

    code = "preflight_failed"


class StackCommandFailed(WanxError, RuntimeError):
    """A container-engine or compose command (build, pull, up, fetch) exited with an error."""

    code = "stack_command_failed"


class StackNotReady(WanxError, TimeoutError):
    """The stack started but the gateway's ``/readyz`` did not answer 200 in time."""

    code = "stack_not_ready"


# ---------------------------------------------------------------- JOBS (journal, runners)
