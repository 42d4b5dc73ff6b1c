"""Every error wanx raises on purpose, grouped by what the caller can do about it.

Each class has a snake_case ``code`` that is never reused, and a ``hint`` telling the user what to do.
Messages follow the house shape: ``<subject>: <what is wrong> (expected X, got Y)``; the hint is the fix.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "ChecksumMismatch",
    "ComfyLockError",
    "ComfyRequestError",
    "ComfyUnavailable",
    "ConfigError",
    "DiskFullError",
    "EnvFileError",
    "FetchFailed",
    "GraphInvalid",
    "InstallError",
    "JobFailed",
    "JobLost",
    "JobTimeout",
    "JournalError",
    "LockfileError",
    "ModelsNotVerified",
    "ParamError",
    "PinMismatchError",
    "PolicyFileError",
    "PreflightFailed",
    "RefusedNodePackError",
    "SizeMismatch",
    "SourceUnavailable",
    "StackCommandFailed",
    "StackNotReady",
    "TokenError",
    "TokensFileError",
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


class TokenError(WanxError, ValueError):
    """A token command cannot be carried out: a bad or duplicate name, or an unknown one to revoke."""

    code = "token_error"


class TokensFileError(WanxError, ValueError):
    """The tokens file cannot be read or is not in the expected shape (``version: 1``, list of tokens)."""

    code = "tokens_file_invalid"
    hint = "Fix the file by hand, or move it away and create tokens again with 'wanx token new'."


class PolicyFileError(WanxError, ValueError):
    """The gateway policy file is missing, not YAML, or has a rule the gateway does not understand."""

    code = "policy_invalid"
    hint = "Start from the shipped policy (docs/gateway.md) and change one rule at a time."


# ---------------------------------------------------------------- WORKFLOWS (schema, check, params, client)


class GraphInvalid(WanxError, ValueError):
    """A workflow graph failed ``wanx workflows check`` or could not be read or converted."""

    code = "graph_invalid"
    hint = 'Fix the graph named above; "wanx workflows check FILE" lists every problem.'


class ParamError(WanxError, ValueError):
    """A workflow parameter is unknown, missing, or out of its declared range."""

    code = "param_invalid"
    hint = 'Run "wanx run WORKFLOW --help" or read workflows/params.yaml for the parameters and their ranges.'


class ComfyUnavailable(WanxError, ConnectionError):
    """ComfyUI (or the gateway in front of it) could not be reached after the retries."""

    code = "comfy_unavailable"
    hint = "Check the --server URL and that the service is up (wanx doctor, or GET /healthz on the gateway)."


class ComfyRequestError(WanxError, RuntimeError):
    """ComfyUI answered a request with an error status (bad token, graph rejected, upload refused)."""

    code = "comfy_request_failed"

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class JobFailed(WanxError, RuntimeError):
    """A queued job ended with an execution error or was interrupted."""

    code = "job_failed"
    hint = "The node and message above come from ComfyUI; fix the input or parameter it names and run again."

    def __init__(self, message: str, *, prompt_id: str, node_id: str | None = None) -> None:
        super().__init__(message)
        self.prompt_id = prompt_id
        self.node_id = node_id


class JobLost(JobFailed):
    """The server no longer knows a job it had accepted (it restarted while the job was queued or running)."""

    code = "job_lost"
    hint = "The server restarted and dropped the job; run it again."


class JobTimeout(WanxError, TimeoutError):
    """A job did not finish within the time allowed; it may still be running on the server."""

    code = "job_timeout"

    def __init__(self, message: str, *, prompt_id: str) -> None:
        super().__init__(
            message,
            hint=f"The job may still be running: look for prompt id {prompt_id} in GET /history/{prompt_id}, "
            "or raise --timeout.",
        )
        self.prompt_id = prompt_id


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


class JournalError(WanxError, OSError):
    """The job journal cannot be opened or written; accepted jobs would not be durable."""

    code = "journal_error"
    hint = "Check that the journal's folder is on a local, writable disk with free space."


class BackendUnavailable(WanxError, ConnectionError):
    """A ComfyUI backend did not answer (down, restarting, or unreachable)."""

    code = "backend_unavailable"
    hint = "Jobs wait in the journal until the backend answers again; check that ComfyUI is running."
