"""`wanx workflows check|build|install|schema`: validate, generate and preload the shipped workflows."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from wanx.cli._output import console, warn
from wanx.errors import ConfigError, GraphInvalid
from wanx.lockfile import LOCKFILE_NAME, Lockfile, load_lockfile
from wanx.workflows.check import Problem
from wanx.workflows.install import InstallAction, install_workflows, write_bytes
from wanx.workflows.schema import Schema, load_schema, schema_from_data, trim_object_info
from wanx.workflows.shipped import check_file, check_shipped, default_root, graph_classes, regenerate_schema, ui_files

app = typer.Typer(help="Check, build and install the shipped workflows.", no_args_is_help=True)

RootOpt = Annotated[
    Path,
    typer.Option(
        "--workflows-dir", envvar="WANX_WORKFLOWS_DIR", help="Folder with params.yaml, api/ and the UI files."
    ),
]
ServerOpt = Annotated[
    str | None,
    typer.Option("--server", help="Check against this live server's /object_info instead of the pinned schema."),
]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="WANX_TOKEN", help="Bearer token for --server.")]
DEFAULT_ROOT = default_root()
SCHEMA_DATA = Path(__file__).resolve().parents[1] / "workflows" / "data" / "schema.json"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="workflows")


def _live_info(server: str, token: str | None) -> dict[str, Any]:
    from wanx.client import ComfyClient  # aiohttp is slow to import; only this path needs it

    async def fetch() -> dict[str, Any]:
        async with ComfyClient(server, token=token) as comfy:
            return await comfy.object_info()

    return asyncio.run(fetch())


def _schema(server: str | None, token: str | None) -> Schema:
    if server is None:
        return load_schema()
    return schema_from_data(trim_object_info(_live_info(server, token), origin=server))


def _lockfile(path: Path | None, root: Path) -> Lockfile | None:
    candidate = path or root.parent / LOCKFILE_NAME
    if not candidate.exists():
        if path is not None:
            raise ConfigError(f"{path}: lockfile not found", hint="Pass an existing models.lock.yaml with --lockfile.")
        warn(f"model files not checked: {candidate} does not exist")
        return None
    return load_lockfile(candidate)


@app.command()
def check(
    files: Annotated[
        list[Path] | None, typer.Argument(help="API or UI graphs to check (default: every shipped one).")
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    lockfile: Annotated[Path | None, typer.Option("--lockfile", help="models.lock.yaml (default: the repo's).")] = None,
    root: RootOpt = DEFAULT_ROOT,
) -> None:
    """Validate graphs against the pinned node schemas (or a live server): classes, inputs, values, links, models."""
    schema = _schema(server, token)
    lock = _lockfile(lockfile, root)
    results: dict[str, list[Problem]] = (
        {str(f): check_file(f, schema, lockfile=lock) for f in files}
        if files
        else check_shipped(root, schema, lockfile=lock)
    )
    bad = {name: problems for name, problems in results.items() if problems}
    for name, problems in results.items():
        if not problems:
            console.print(f"[green]ok[/green] {name}")
        for problem in problems:
            console.print(f"[red]{name}[/red]: {problem}", soft_wrap=True)
    if bad:
        count = sum(len(p) for p in bad.values())
        raise GraphInvalid(f"{count} problem(s) in {len(bad)} of {len(results)} graph checks")


@app.command()
def build(
    check_only: Annotated[
        bool, typer.Option("--check", help="Only report UI files that differ; write nothing.")
    ] = False,
    root: RootOpt = DEFAULT_ROOT,
) -> None:
    """Regenerate the UI-format workflows (workflows/*.json) from the API graphs in workflows/api/."""
    stale = []
    for path, text in ui_files(root, load_schema()).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            console.print(f"up to date {path.name}")
            continue
        stale.append(path.name)
        if not check_only:
            write_bytes(path, text.encode())
            console.print(f"wrote {path}")
    if check_only and stale:
        raise GraphInvalid(
            f"UI workflows out of date: {', '.join(stale)}", hint="Run 'wanx workflows build' and commit."
        )


@app.command()
def install(
    user_dir: Annotated[Path, typer.Option("--user-dir", help="ComfyUI's user/ folder (on the data volume).")],
    root: RootOpt = DEFAULT_ROOT,
) -> None:
    """Preload the UI workflows into USER_DIR/default/workflows/; never overwrites a user's own files."""
    sources = list(ui_files(root, load_schema()))
    missing = [p for p in sources if not p.exists()]
    if missing:
        raise GraphInvalid(f"{missing[0]}: shipped UI workflow missing", hint="Run 'wanx workflows build'.")
    for result in install_workflows(sources, user_dir):
        if result.action is InstallAction.KEPT:
            warn(
                f"{result.path}: kept your version (it differs from the one wanx installed); "
                "delete or rename it to get the shipped one"
            )
        else:
            console.print(f"{result.action.value} {result.path}")


@app.command()
def schema(
    server: ServerOpt = None,
    token: TokenOpt = None,
    source: Annotated[Path | None, typer.Option("--from", help="A saved /object_info JSON file.")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the trimmed schema.")] = SCHEMA_DATA,
    origin: Annotated[str | None, typer.Option("--origin", help="Text recorded as the schema's origin.")] = None,
    root: RootOpt = DEFAULT_ROOT,
) -> None:
    """Regenerate the trimmed node schema from a live server's /object_info (or a saved dump)."""
    if (server is None) == (source is None):
        raise typer.BadParameter("give exactly one of --server URL or --from FILE")
    info = _live_info(server, token) if server else json.loads(source.read_text(encoding="utf-8"))  # type: ignore[union-attr]
    keep = set(load_schema().classes) | graph_classes(root)
    data = regenerate_schema(info, keep=keep, origin=origin or server or source.name)  # type: ignore[union-attr]
    write_bytes(output, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode())
    console.print(f"wrote {output} ({len(data['classes'])} classes)")
