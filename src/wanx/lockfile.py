"""models.lock.yaml <-> frozen ``Lockfile``/``LockEntry``/``Source``: load, validate, select, dump.

The file is the one source of truth for which weight files exist, where they go and what their bytes must be.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, cast

import yaml

from wanx.errors import LockfileError, UnknownWorkflowError
from wanx.fsutil import atomic_write, safe_relpath

__all__ = [
    "LOCKFILE_NAME",
    "LockEntry",
    "Lockfile",
    "Source",
    "SourceKind",
    "dump_lockfile",
    "dumps_lockfile",
    "load_lockfile",
    "loads_lockfile",
]

LOCKFILE_NAME = "models.lock.yaml"
VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_WORKFLOW = re.compile(r"[a-z0-9][a-z0-9._-]*")

HEADER = """\
# models.lock.yaml: every weight file the two workflows load, pinned by size and sha256.
# Read by `wanx models list|fetch|verify`; `wanx models lock` fills null size/sha256/revision from the hub.
# `path` is relative to ComfyUI's models/ folder and is exactly the name the workflow graphs use.
# Sources are tried in order; every byte is checked against size and sha256 whatever the source.
# hf-mirror without repo/path/revision reuses the entry's hf source through a mirror endpoint.
# ${NAME} in url/dir is taken from the environment; a source whose variable is unset is skipped.
# Facts and their provenance: docs/models.md (from the research notes in reference/models.md).
"""


class SourceKind(StrEnum):
    HF = "hf"
    HF_MIRROR = "hf-mirror"
    MODELSCOPE = "modelscope"
    URL = "url"
    LOCAL = "local"


# Which keys each kind accepts beside the common ``kind``, ``verified`` and ``note``.
_KIND_KEYS: dict[SourceKind, frozenset[str]] = {
    SourceKind.HF: frozenset({"repo", "path", "revision", "endpoint"}),
    SourceKind.HF_MIRROR: frozenset({"repo", "path", "revision", "endpoint"}),
    SourceKind.MODELSCOPE: frozenset({"repo", "path", "revision", "endpoint"}),
    SourceKind.URL: frozenset({"url"}),
    SourceKind.LOCAL: frozenset({"dir", "path"}),
}
_SOURCE_FIELDS = ("kind", "repo", "path", "revision", "endpoint", "url", "dir", "verified", "note")
_ENTRY_FIELDS = ("path", "workflows", "size", "sha256", "unresolved", "note", "sources")


@dataclass(frozen=True, slots=True)
class Source:
    """One place a file can come from. ``verified=False`` marks a source nobody has seen serve this file."""

    kind: SourceKind
    repo: str | None = None
    path: str | None = None
    revision: str | None = None
    endpoint: str | None = None
    url: str | None = None
    dir: str | None = None
    verified: bool = True
    note: str | None = None

    def describe(self) -> str:
        """A short human label, e.g. ``hf Kijai/WanVideo_comfy@8260d42:Wan2_1_VAE_bf16.safetensors``."""
        if self.kind is SourceKind.URL:
            return f"url {self.url}"
        if self.kind is SourceKind.LOCAL:
            return f"local {self.dir}" + (f"/{self.path}" if self.path else "")
        rev = (self.revision or "main")[:12]
        return f"{self.kind} {self.repo}@{rev}:{self.path}"


@dataclass(frozen=True, slots=True)
class LockEntry:
    """One weight file: where it goes under models/, which workflows use it, what its bytes are, where to get it."""

    path: str
    workflows: tuple[str, ...]
    size: int | None
    sha256: str | None
    sources: tuple[Source, ...]
    unresolved: str | None = None
    note: str | None = None

    @property
    def pinned(self) -> bool:
        return self.sha256 is not None and self.size is not None

    @property
    def upstream_name(self) -> str | None:
        """The hub-side file name when it differs from the local one (renamed copies)."""
        local = self.path.rsplit("/", 1)[-1]
        for source in self.sources:
            if source.kind is SourceKind.HF and source.path:
                remote = source.path.rsplit("/", 1)[-1]
                return remote if remote != local else None
        return None


@dataclass(frozen=True, slots=True)
class Lockfile:
    entries: tuple[LockEntry, ...]
    version: int = VERSION

    @property
    def workflows(self) -> tuple[str, ...]:
        return tuple(sorted({name for entry in self.entries for name in entry.workflows}))

    def select(self, workflows: Iterable[str] = ()) -> tuple[LockEntry, ...]:
        """Entries used by any of ``workflows`` (all entries when empty), in file order.

        Raises:
            UnknownWorkflowError: a name no entry is used by.
        """
        wanted = tuple(dict.fromkeys(workflows))
        unknown = [name for name in wanted if name not in self.workflows]
        if unknown:
            raise UnknownWorkflowError(
                f"--workflow {unknown[0]}: no such workflow in the lock file (expected one of: "
                f"{', '.join(self.workflows)})",
                hint="Use one of the listed names, or run without --workflow for every file.",
            )
        if not wanted:
            return self.entries
        return tuple(e for e in self.entries if set(e.workflows) & set(wanted))

    def replace_entry(self, entry: LockEntry) -> Lockfile:
        return dataclasses.replace(self, entries=tuple(entry if e.path == entry.path else e for e in self.entries))


def load_lockfile(path: Path) -> Lockfile:
    """Read and validate ``path``.

    Raises:
        LockfileError: the file is missing, not YAML, or breaks the schema; the message names the entry and field.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LockfileError(f"{path}: cannot read the lock file ({exc.strerror or exc})") from exc
    return loads_lockfile(text, name=str(path))


def loads_lockfile(text: str, *, name: str = LOCKFILE_NAME) -> Lockfile:
    """Parse lock-file text; ``name`` is how messages refer to the file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LockfileError(f"{name}: not valid YAML ({_one_line(exc)})") from exc
    if not isinstance(data, dict):
        raise LockfileError(f"{name}: expected a mapping with 'version' and 'files', got {type(data).__name__}")
    _check_keys(name, data, {"version", "files"})
    if data.get("version") != VERSION:
        raise LockfileError(f"{name}: unsupported version (expected {VERSION}, got {data.get('version')!r})")
    files = data.get("files")
    if not isinstance(files, list) or not files:
        raise LockfileError(f"{name}: 'files' must be a non-empty list of entries")
    entries = tuple(_entry(name, index, raw) for index, raw in enumerate(files))
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            raise LockfileError(f'{name}: entry "{entry.path}": listed twice (each local path once)')
        seen.add(entry.path)
    return Lockfile(entries=entries)


def dumps_lockfile(lockfile: Lockfile) -> str:
    """Serialise to the canonical text (``load(dump(x)) == x``); comments live in ``note`` fields and the header."""
    files = [_entry_dict(entry) for entry in lockfile.entries]
    body = yaml.dump({"version": lockfile.version, "files": files}, Dumper=_Dumper, sort_keys=False, width=116)
    return HEADER + body


def dump_lockfile(lockfile: Lockfile, path: Path) -> None:
    """Write atomically (temp sibling, fsync, rename)."""
    with atomic_write(path) as fh:
        cast("IO[str]", fh).write(dumps_lockfile(lockfile))


# ---------------------------------------------------------------- parsing


def _entry(name: str, index: int, raw: object) -> LockEntry:
    if not isinstance(raw, dict):
        raise LockfileError(f"{name}: files[{index}]: expected a mapping, got {type(raw).__name__}")
    path = raw.get("path")
    where = f'{name}: entry "{path}"' if isinstance(path, str) else f"{name}: files[{index}]"
    _check_keys(where, raw, set(_ENTRY_FIELDS))
    if not isinstance(path, str):
        raise LockfileError(f"{where}: 'path' is required (relative to ComfyUI's models/ folder)")
    try:
        safe_relpath(path)
    except ValueError as exc:
        raise LockfileError(f"{where}: 'path' {exc}") from exc
    if "/" not in path:
        raise LockfileError(f"{where}: 'path' must start with the models/ subfolder, e.g. vae/{path}")
    workflows = raw.get("workflows")
    if not isinstance(workflows, list) or not workflows or not all(isinstance(w, str) for w in workflows):
        raise LockfileError(f"{where}: 'workflows' must be a non-empty list of workflow names")
    for workflow in workflows:
        if not _WORKFLOW.fullmatch(workflow):
            raise LockfileError(f"{where}: workflow {workflow!r} is not a plain lower-case name")
    size = raw.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise LockfileError(f"{where}: 'size' must be a byte count or null (got {size!r})")
    sha256 = raw.get("sha256")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.fullmatch(sha256)):
        got = f"{len(sha256)} characters" if isinstance(sha256, str) else repr(sha256)
        raise LockfileError(
            f"{where}: sha256 must be 64 lower-case hex characters (got {got})",
            hint='Fix it, or set it to null and run "wanx models lock".',
        )
    unresolved = _optional_str(where, raw, "unresolved")
    if (size is None or sha256 is None) and not unresolved:
        raise LockfileError(
            f"{where}: size or sha256 is null without an 'unresolved:' reason",
            hint="Say why the value is unknown in 'unresolved', or fill it in (wanx models lock).",
        )
    sources_raw = raw.get("sources")
    if not isinstance(sources_raw, list) or not sources_raw:
        raise LockfileError(f"{where}: 'sources' must be a non-empty list")
    sources = tuple(_source(where, i, s) for i, s in enumerate(sources_raw))
    _check_mirror(where, sources)
    return LockEntry(
        path=path,
        workflows=tuple(workflows),
        size=size,
        sha256=sha256,
        sources=sources,
        unresolved=unresolved,
        note=_optional_str(where, raw, "note"),
    )


def _source(where: str, index: int, raw: object) -> Source:
    at = f"{where}: sources[{index}]"
    if not isinstance(raw, dict):
        raise LockfileError(f"{at}: expected a mapping with 'kind', got {type(raw).__name__}")
    try:
        kind = SourceKind(str(raw.get("kind")))
    except ValueError as exc:
        kinds = ", ".join(k.value for k in SourceKind)
        raise LockfileError(f"{at}: unknown kind {raw.get('kind')!r} (expected one of: {kinds})") from exc
    _check_keys(f"{at} ({kind})", raw, set(_KIND_KEYS[kind]) | {"kind", "verified", "note"})
    values = {key: _optional_str(at, raw, key) for key in _KIND_KEYS[kind]}
    verified = raw.get("verified", True)
    if not isinstance(verified, bool):
        raise LockfileError(f"{at}: 'verified' must be true or false")
    source = Source(kind=kind, verified=verified, note=_optional_str(at, raw, "note"), **values)
    _check_source(at, source)
    return source


def _check_source(at: str, source: Source) -> None:
    if source.kind in (SourceKind.HF, SourceKind.MODELSCOPE):
        if not source.repo or not _REPO.fullmatch(source.repo):
            raise LockfileError(f"{at}: 'repo' must be owner/name (got {source.repo!r})")
        if not source.path:
            raise LockfileError(f"{at}: 'path' (the file inside the repo) is required")
    if source.kind is SourceKind.MODELSCOPE and not source.revision:
        raise LockfileError(f"{at}: 'revision' is required for modelscope (e.g. master)")
    if source.kind is SourceKind.URL and not (source.url and source.url.startswith(("https://", "http://", "${"))):
        raise LockfileError(f"{at}: 'url' must be an http(s) URL (got {source.url!r})")
    if source.kind is SourceKind.LOCAL and not source.dir:
        raise LockfileError(f"{at}: 'dir' (a folder laid out like models/) is required")
    for value in (source.path,) if source.kind is not SourceKind.URL else ():
        if value is not None:
            try:
                safe_relpath(value)
            except ValueError as exc:
                raise LockfileError(f"{at}: 'path' {exc}") from exc


def _check_mirror(where: str, sources: tuple[Source, ...]) -> None:
    """A bare hf-mirror source mirrors the entry's hf source, so one must exist."""
    has_hf = any(s.kind is SourceKind.HF for s in sources)
    for source in sources:
        if source.kind is not SourceKind.HF_MIRROR:
            continue
        if source.repo and not source.path:
            raise LockfileError(f"{where}: hf-mirror with a 'repo' needs a 'path' too")
        if not source.repo and not has_hf:
            raise LockfileError(f"{where}: hf-mirror needs 'repo' and 'path', or an hf source to mirror")


def _check_keys(where: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise LockfileError(f"{where}: unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _optional_str(where: str, raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    raise LockfileError(f"{where}: {key!r} must be a non-empty string or absent (got {value!r})")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


# ---------------------------------------------------------------- dumping


class _Flow(list[str]):
    """A list dumped in flow style: ``workflows: [wanx-21, vace]``."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Flow, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def _entry_dict(entry: LockEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"path": entry.path, "workflows": _Flow(entry.workflows)}
    out["size"] = entry.size
    out["sha256"] = entry.sha256
    if entry.unresolved:
        out["unresolved"] = entry.unresolved
    if entry.note:
        out["note"] = entry.note
    out["sources"] = [_source_dict(s) for s in entry.sources]
    return out


def _source_dict(source: Source) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _SOURCE_FIELDS:
        value = getattr(source, key)
        if key == "kind":
            out[key] = str(value)
        elif key == "verified":
            if not value:
                out[key] = False
        elif key == "revision" and source.kind is SourceKind.HF:
            out[key] = value  # an unpinned hf revision is written as an explicit null, for `lock` to fill
        elif value is not None:
            out[key] = value
    return out
