"""Every error wanx raises on purpose, grouped by what the caller can do about it.

Each class has a snake_case ``code`` that is never reused, and a ``hint`` telling the user what to do.
Messages follow the house shape: ``<subject>: <what is wrong> (expected X, got Y)``; the hint is the fix.
"""

from __future__ import annotations

__all__ = [
    "ComfyLockError",
    "ConfigError",
    "InstallError",
    "PinMismatchError",
    "RefusedNodePackError",
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


# ---------------------------------------------------------------- JOBS (journal, runners)
