"""Every error wanx raises on purpose, grouped by what the caller can do about it.

Each class has a snake_case ``code`` that is never reused, and a ``hint`` telling the user what to do.
Messages follow the house shape: ``<subject>: <what is wrong> (expected X, got Y)``; the hint is the fix.
"""

from __future__ import annotations

__all__ = [
    "ChecksumMismatch",
    "ComfyLockError",
    "ConfigError",
    "DiskFullError",
    "EnvFileError",
    "FetchFailed",
    "InstallError",
    "LockfileError",
    "ModelsNotVerified",
    "PinMismatchError",
    "PreflightFailed",
    "RefusedNodePackError",
    "SizeMismatch",
    "SourceUnavailable",
    "StackCommandFailed",
    "StackNotReady",
    "UnknownWorkflowError",
    "UnverifiedEntryError",
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


class LockfileError(WanxError, ValueError):
    """models.lock.yaml cannot be read, or an entry breaks the schema (``models.lock.yaml: entry "x": ...``)."""

    code = "lockfile_invalid"
    hint = 'Fix the file (schema in docs/models.md) or restore it with "git checkout models.lock.yaml".'


class UnknownWorkflowError(WanxError, LookupError):
    """``--workflow NAME`` names no workflow that any lock entry is used by."""

    code = "unknown_workflow"


class UnverifiedEntryError(WanxError, ValueError):
    """An entry has no sha256 in the lock file and ``--allow-unverified`` was not given."""

    code = "unverified_entry"


class SourceUnavailable(WanxError, ConnectionError):
    """One source could not deliver a file: unreachable, 404, refused, or cut off. The next source is tried."""

    code = "source_unavailable"


class SizeMismatch(WanxError, OSError):
    """Downloaded or present bytes have a different length from the lock file's ``size``."""

    code = "size_mismatch"


class ChecksumMismatch(WanxError, OSError):
    """Downloaded or present bytes hash to a different sha256 from the lock file's."""

    code = "checksum_mismatch"


class DiskFullError(WanxError, OSError):
    """The models folder's file system has less free space than the files still to fetch need."""

    code = "disk_full"


class FetchFailed(WanxError):
    """``wanx models fetch`` could not place and verify every requested file (each failure was printed)."""

    code = "fetch_failed"


class ModelsNotVerified(WanxError):
    """``wanx models verify`` found missing, wrong-size or wrong-hash files."""

    code = "models_not_verified"
    hint = 'Run "wanx models fetch" to download or repair them.'


# ---------------------------------------------------------------- GATEWAY (tokens, policy, proxy)


# ---------------------------------------------------------------- WORKFLOWS (schema, check, params, client)


# ---------------------------------------------------------------- RUNTIME (install, doctor, up)


class ComfyLockError(WanxError, ValueError):
    """comfyui.lock.yaml is unreadable or an entry is invalid (bad commit, missing field, refused pack)."""

    code = "comfy_lock_invalid"
    hint = "Fix comfyui.lock.yaml; commits are full 40-character hashes from the pinned validation."


class InstallError(WanxError, RuntimeError):
    """A step of the ComfyUI install failed (git, venv, pip, a file it writes)."""

    code = "install_failed"
    hint = "Read the step's output above, fix the cause, and run the install again; it starts over cleanly."


class PinMismatchError(InstallError):
    """A clone's HEAD is not the commit comfyui.lock.yaml pins (a mirror serving other history)."""

    code = "install_pin_mismatch"
    hint = "Point the source override or mirror at a copy of the upstream repository that has the pinned commit."


class RefusedNodePackError(InstallError):
    """A node pack that must never be installed (ComfyUI-Manager) is present in custom_nodes."""

    code = "install_refused_node_pack"
    hint = "Remove it from custom_nodes: it installs and updates code at run time, which defeats the pins."


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
