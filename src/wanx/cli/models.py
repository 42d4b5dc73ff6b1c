"""`wanx models list|fetch|verify|lock`: the weight files in models.lock.yaml, fetched and checked byte for byte."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from wanx.cli import _output
from wanx.cli._progress import RichReporter
from wanx.errors import FetchFailed, ModelsNotVerified, UsageError
from wanx.fetch import FetchOptions, Status, fetch, partial_path
from wanx.lockfile import LockEntry, SourceKind, dump_lockfile, dumps_lockfile, load_lockfile
from wanx.lockfill import fill_lockfile
from wanx.sources import SourceSettings
from wanx.state import FileRecord, StateFile
from wanx.verify import verify

__all__ = ["app", "register"]

app = typer.Typer(
    help="Weight files: list, fetch, verify, and lock them (models.lock.yaml).",
    no_args_is_help=True,
)

LockfileOpt = Annotated[
    Path,
    typer.Option(
        "--lockfile", envvar="WANX_LOCKFILE", help="The lock file to read.", show_default=True, dir_okay=False
    ),
]
ModelsDirOpt = Annotated[
    Path,
    typer.Option(
        "--models-dir",
        envvar="WANX_MODELS_DIR",
        help="ComfyUI's models/ folder (lock paths are relative to it).",
        file_okay=False,
    ),
]
WorkflowOpt = Annotated[
    list[str] | None,
    typer.Option("--workflow", "-w", help="Only the files this workflow needs (repeatable; default: all)."),
]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, max=32, help="Files handled in parallel.")]
FullOpt = Annotated[bool, typer.Option("--full", help="Re-hash every file instead of trusting the state file.")]

DEFAULT_LOCKFILE = Path("models.lock.yaml")
DEFAULT_MODELS_DIR = Path("models")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")


@app.command("list")
def list_command(
    lockfile: LockfileOpt = DEFAULT_LOCKFILE,
    models_dir: ModelsDirOpt = DEFAULT_MODELS_DIR,
    workflow: WorkflowOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file on stdout.")] = False,
) -> None:
    """List the lock file's entries and whether each is on disk (from the state file; no hashing)."""
    lock = load_lockfile(lockfile)
    entries = lock.select(workflow or [])
    records = StateFile(models_dir).load()
    rows = [(entry, _disk_status(entry, models_dir, records)) for entry in entries]
    if as_json:
        for entry, status in rows:
            print(json.dumps(_entry_json(entry, status)))
    else:
        table = Table("path", "workflows", "size", "sha256", "on disk", box=None, header_style="bold")
        for entry, status in rows:
            size = f"{entry.size:,}" if entry.size is not None else "[bold red]UNRESOLVED[/]"
            sha = entry.sha256[:12] if entry.sha256 else "[bold red]UNRESOLVED[/]"
            table.add_row(entry.path, ",".join(entry.workflows), size, sha, status)
        _output.console.print(table)
    _warn_unresolved(entries)


@app.command("fetch")
def fetch_command(
    lockfile: LockfileOpt = DEFAULT_LOCKFILE,
    models_dir: ModelsDirOpt = DEFAULT_MODELS_DIR,
    workflow: WorkflowOpt = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source", help="Use only these source kinds, in this order: hf, hf-mirror, modelscope, url, local."
        ),
    ] = None,
    jobs: JobsOpt = 2,
    full: FullOpt = False,
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified", help="Also fetch entries the lock file pins no sha256 for (trust on first use)."
        ),
    ] = False,
    local_dir: Annotated[
        list[Path] | None,
        typer.Option("--local-dir", help="A folder laid out like models/ (NAS, OSS mount) to copy from first."),
    ] = None,
    hf_mirror_endpoint: Annotated[
        str | None, typer.Option(envvar="WANX_HF_MIRROR_ENDPOINT", help="Mirror for hf-mirror sources.")
    ] = None,
    modelscope_endpoint: Annotated[
        str | None, typer.Option(envvar="WANX_MODELSCOPE_ENDPOINT", help="ModelScope endpoint.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only warnings and failures.")] = False,
) -> None:
    """Download what is missing or wrong, verify size and sha256, and place it; exit 0 only if all is verified."""
    lock = load_lockfile(lockfile)
    entries = lock.select(workflow or [])
    settings = _settings(local_dir or [], hf_mirror_endpoint, modelscope_endpoint)
    options = FetchOptions(
        models_dir=models_dir,
        settings=settings,
        kinds=_kinds(source or []),
        jobs=jobs,
        full=full,
        allow_unverified=allow_unverified,
    )
    _warn_unresolved(entries)
    models_dir.mkdir(parents=True, exist_ok=True)
    cancel = threading.Event()
    with RichReporter(_output.console, quiet=quiet) as reporter:
        try:
            results = fetch(entries, options, reporter, cancel=cancel)
        except KeyboardInterrupt:
            kept = [e.path for e in entries if partial_path(models_dir, e).exists()]
            _output.console.print(
                f"fetch interrupted: nothing incomplete was placed; the partial downloads of {', '.join(kept) or '-'} "
                "resume when you run the same command again",
                soft_wrap=True,
                markup=False,
            )
            raise
    failed = [r for r in results if r.status is Status.FAILED]
    if failed:
        raise FetchFailed(
            f"{models_dir}: {len(failed)} of {len(results)} files could not be fetched and verified: "
            + ", ".join(r.entry.path for r in failed),
            hint="Each reason is printed above. Check the network or pick another --source, then run the same "
            "command again; completed and partial files are kept.",
        )
    if not quiet:
        fetched = sum(r.status is Status.FETCHED for r in results)
        _output.console.print(f"all {len(results)} files present and verified ({fetched} fetched) in {models_dir}")


@app.command("verify")
def verify_command(
    lockfile: LockfileOpt = DEFAULT_LOCKFILE,
    models_dir: ModelsDirOpt = DEFAULT_MODELS_DIR,
    workflow: WorkflowOpt = None,
    full: FullOpt = False,
    jobs: JobsOpt = 2,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file on stdout.")] = False,
) -> None:
    """Report missing, wrong-size and wrong-hash files; non-zero exit on any."""
    lock = load_lockfile(lockfile)
    entries = lock.select(workflow or [])
    _warn_unresolved(entries)
    with RichReporter(_output.console, quiet=True) as reporter:
        results = verify(entries, models_dir, reporter, full=full, jobs=jobs)
    for result in results:
        if as_json:
            print(json.dumps({"path": result.entry.path, "check": result.check.name.lower(), "sha256": result.sha256}))
        style = "green" if result.check.good else "bold red"
        _output.console.print(f"[{style}]{result.check}[/] {result.message}", soft_wrap=True, highlight=False)
    bad = [r for r in results if not r.check.good]
    if bad:
        raise ModelsNotVerified(
            f"{models_dir}: {len(bad)} of {len(results)} files are not verified: "
            + ", ".join(f"{r.entry.path} ({r.check})" for r in bad)
        )


@app.command("lock")
def lock_command(
    lockfile: LockfileOpt = DEFAULT_LOCKFILE,
    models_dir: ModelsDirOpt = DEFAULT_MODELS_DIR,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the new lock file instead of writing it.")] = False,
) -> None:
    """Fill null size, sha256 and hf revisions from the hub's metadata (needs access to the hub or HF_ENDPOINT)."""
    del models_dir  # accepted like the other subcommands; pinning reads only the hub
    lock = load_lockfile(lockfile)
    updated, changes = fill_lockfile(lock, _settings([], None, None))
    for change in changes:
        style = "green" if change.changed else "yellow"
        _output.console.print(f"[{style}]{change.path}[/]: {change.message}", soft_wrap=True, highlight=False)
    if dry_run:
        print(dumps_lockfile(updated), end="")
    elif updated != lock:
        dump_lockfile(updated, lockfile)
        _output.console.print(f"wrote {lockfile}")
    else:
        _output.console.print(f"{lockfile}: nothing to fill in")
    if any(not c.changed for c in changes):
        raise typer.Exit(1)


# ---------------------------------------------------------------- helpers


def _settings(local_dirs: list[Path], hf_mirror: str | None, modelscope: str | None) -> SourceSettings:
    environ = dict(os.environ)
    if hf_mirror:
        environ["WANX_HF_MIRROR_ENDPOINT"] = hf_mirror
    if modelscope:
        environ["WANX_MODELSCOPE_ENDPOINT"] = modelscope
    return SourceSettings.from_env(environ, local_dirs=local_dirs)


def _kinds(names: list[str]) -> tuple[SourceKind, ...]:
    kinds = []
    for name in names:
        try:
            kinds.append(SourceKind(name))
        except ValueError as exc:
            allowed = ", ".join(k.value for k in SourceKind)
            raise UsageError(f"--source {name}: unknown source kind (expected one of: {allowed})") from exc
    return tuple(kinds)


def _disk_status(entry: LockEntry, models_dir: Path, records: dict[str, FileRecord]) -> str:
    target = models_dir / entry.path
    if not target.is_file():
        return "missing"
    record = records.get(entry.path)
    if record is not None and record.matches(target) and (entry.sha256 is None or record.sha256 == entry.sha256):
        return "verified" if entry.sha256 else "verified (trust on first use)"
    return "present, not verified"


def _entry_json(entry: LockEntry, status: str) -> dict[str, object]:
    return {
        "path": entry.path,
        "workflows": list(entry.workflows),
        "size": entry.size,
        "sha256": entry.sha256,
        "unresolved": entry.unresolved,
        "upstream_name": entry.upstream_name,
        "on_disk": status,
        "sources": [s.describe() for s in entry.sources],
    }


def _warn_unresolved(entries: tuple[LockEntry, ...]) -> None:
    for entry in entries:
        if not entry.pinned:
            _output.warn(f"{entry.path}: UNRESOLVED in the lock file, no size/sha256 to check: {entry.unresolved}")
