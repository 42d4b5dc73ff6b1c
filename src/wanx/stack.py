"""The compose stack's settings: the ``.env`` file `make up` reads, and the values the stack runs with.

One source of truth for the ``.env`` keys: ``.env.example`` documents them, ``StackConfig`` reads them with
the same defaults ``deploy/compose.yaml`` uses, and ``masked_settings`` is what ``wanx doctor`` prints.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from wanx.errors import ConfigError, EnvFileError
from wanx.fsutil import atomic_write

__all__ = [
    "DEFAULT_WORKFLOWS",
    "GPU_TORCH_INDEX_URL",
    "GPU_TORCH_SPEC",
    "LOCAL_IMAGE",
    "STACK_KEYS",
    "StackConfig",
    "create_env_file",
    "fill_token",
    "masked_settings",
    "read_env_file",
]

DEFAULT_WORKFLOWS = ("wanx-21", "vace")
LOCAL_IMAGE = "localhost/wanx:latest"  # the tag `make image` builds; deploy/compose.yaml's default image
# The CUDA 12 torch of the image (Dockerfile ARG TORCH_SPEC/TORCH_INDEX_URL), for the no-Docker mode on a GPU host.
GPU_TORCH_SPEC = "torch==2.8.0 torchvision==0.23.0 torchaudio==2.8.0"
GPU_TORCH_INDEX_URL = "https://download.pytorch.org/whl/cu128"
# Every key the stack reads, in the order `wanx doctor` shows them; the values are the defaults.
STACK_KEYS: Mapping[str, str] = {
    "WANX_WORKFLOWS": ",".join(DEFAULT_WORKFLOWS),
    "WANX_BIND": "0.0.0.0",
    "WANX_PORT": "8188",
    "WANX_MODELS_DIR": "var/models",
    "WANX_DATA_DIR": "var/data",
    "WANX_IMAGE": "",
    "WANX_GPUS": "",
    "WANX_TOKEN": "",
    "HF_ENDPOINT": "",
    "HF_TOKEN": "",
}
_SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|KEY", re.IGNORECASE)
_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@dataclass(frozen=True, slots=True)
class StackConfig:
    """What the compose stack runs with; relative host paths are resolved against ``root``."""

    root: Path
    workflows: tuple[str, ...] = DEFAULT_WORKFLOWS
    bind: str = "0.0.0.0"
    port: int = 8188
    models_dir: Path = Path("var/models")
    data_dir: Path = Path("var/data")
    image: str | None = None
    gpus: tuple[int, ...] = ()  # one ComfyUI per listed GPU; empty: every GPU the host has (see with_gpus)
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, root: Path) -> StackConfig:
        """Build from ``environ`` (the ``.env`` values overlaid with the process environment)."""

        def get(name: str) -> str:
            return environ.get(name, "").strip() or STACK_KEYS[name]

        workflows = tuple(w for w in re.split(r"[,\s]+", get("WANX_WORKFLOWS")) if w)
        if not workflows:
            raise ConfigError("WANX_WORKFLOWS: empty (expected wanx-21, vace or both). Set it in .env.")
        port_text = get("WANX_PORT")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"WANX_PORT: {port_text!r} is not a TCP port (expected 1-65535). Fix it in .env.")
        gpus_text = get("WANX_GPUS")
        if not re.fullmatch(r"(\d+\s*,\s*)*\d+|", gpus_text):
            raise ConfigError(
                f"WANX_GPUS: {gpus_text!r} is not a list of GPU indices (expected e.g. 0,1). Fix it in .env."
            )
        return cls(
            root=root,
            workflows=workflows,
            gpus=tuple(int(g) for g in re.split(r"\s*,\s*", gpus_text) if g),
            bind=get("WANX_BIND"),
            port=int(port_text),
            models_dir=(root / get("WANX_MODELS_DIR")).resolve(),
            data_dir=(root / get("WANX_DATA_DIR")).resolve(),
            image=get("WANX_IMAGE") or None,
            token=get("WANX_TOKEN") or None,
        )

    @property
    def local_url(self) -> str:
        """The gateway as seen from this host (loopback when it listens on every address)."""
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        return f"http://{host}:{self.port}"

    def with_gpus(self, count: int) -> StackConfig:
        """Fill an empty GPU list with every GPU the host has, so each gets its own ComfyUI."""
        return self if self.gpus or count < 1 else replace(self, gpus=tuple(range(count)))

    def compose_environ(self) -> dict[str, str]:
        """Variables handed to compose so that its interpolation sees absolute host paths."""
        return {
            "WANX_GPUS": ",".join(str(g) for g in self.gpus),
            "WANX_WORKFLOWS": ",".join(self.workflows),
            "WANX_BIND": self.bind,
            "WANX_PORT": str(self.port),
            "WANX_MODELS_DIR": str(self.models_dir),
            "WANX_DATA_DIR": str(self.data_dir),
        }


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file (``NAME=value``, ``#`` comments, optional quotes) as compose reads it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise EnvFileError(f"{path}: cannot read ({e.strerror}).", hint="Check the path and its permissions.") from e
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise EnvFileError(
                f"{path}:{number}: not a NAME=value line (got {line[:40]!r}).",
                hint="Fix or delete the line; .env.example shows the expected form.",
            )
        name, value = match.groups()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[name] = value
    return values


def create_env_file(target: Path, *, example: Path, token: str | None = None) -> str:
    """Create ``target`` from ``example`` with a fresh ``WANX_TOKEN``; return the token.

    The file is written to a temp sibling at mode 0600 and linked into place, so an existing ``.env``
    is never overwritten (``FileExistsError``) and a crash leaves no half-written file.
    """
    token = token or secrets.token_urlsafe(32)
    try:
        lines = example.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise EnvFileError(
            f"{example}: cannot read the template ({e.strerror}).", hint="Restore .env.example from git."
        ) from e
    if not any(line.startswith("WANX_TOKEN=") for line in lines):
        raise EnvFileError(f"{example}: has no WANX_TOKEN= line.", hint="Restore .env.example from git.")
    body = "\n".join(f"WANX_TOKEN={token}" if line.startswith("WANX_TOKEN=") else line for line in lines) + "\n"
    _write_secret(body, target, replace=False)
    return token


def fill_token(target: Path, *, token: str | None = None) -> str:
    """Give an existing ``.env`` whose ``WANX_TOKEN`` is empty a fresh token; return it.

    The other lines are kept as they are; the file is rewritten through a temp sibling at mode 0600.
    """
    token = token or secrets.token_urlsafe(32)
    lines = target.read_text(encoding="utf-8").splitlines()
    filled = [f"WANX_TOKEN={token}" if _name(line) == "WANX_TOKEN" else line for line in lines]
    if filled == lines:
        filled.append(f"WANX_TOKEN={token}")
    _write_secret("\n".join(filled) + "\n", target, replace=True)
    return token


def _name(line: str) -> str | None:
    match = _LINE.match(line.strip())
    return match.group(1) if match else None


def _write_secret(body: str, target: Path, *, replace: bool) -> None:
    """Write ``body`` at mode 0600 through a temp sibling; without ``replace`` an existing file is never touched."""
    with atomic_write(target, mode=0o600, exclusive=not replace) as fh:
        fh.write(body)  # type: ignore[call-overload]


def masked_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The effective stack settings, secrets masked: every known key, then any other ``WANX_*``."""
    names = list(STACK_KEYS) + sorted(n for n in environ if n.startswith("WANX_") and n not in STACK_KEYS)
    shown: dict[str, str] = {}
    for name in names:
        value = environ.get(name, "").strip() or STACK_KEYS.get(name, "")
        if value and _SECRET.search(name):
            value = f"set ({len(value)} characters, hidden)"
        shown[name] = value or "(unset)"
    return shown
