"""`wanx run wanx-21|vace`: upload inputs, fill parameters by name, run the job, download the outputs."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from wanx.cli._output import console
from wanx.errors import GraphInvalid, ParamError, UsageError
from wanx.workflows.check import check_graph
from wanx.workflows.params import ParamType, WorkflowSpec, fill_params, load_graph, load_workflows, parse_value
from wanx.workflows.schema import load_schema
from wanx.workflows.shipped import default_root

if TYPE_CHECKING:
    from wanx.client import ComfyClient, JobResult, OutputFile
    from wanx.client import Progress as JobProgress

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
DEFAULT_ROOT = default_root()


class Workflow(StrEnum):
    WANX_21 = "wanx-21"
    VACE = "vace"


class Mode(StrEnum):
    RESTYLE = "restyle"
    REPLACE = "replace"
    REFERENCE = "reference"


def register(root: typer.Typer) -> None:
    root.command(name="run")(run)


def run(
    workflow: Annotated[Workflow, typer.Argument(help="wanx-21 (image to video) or vace (video editing).")],
    server: Annotated[str, typer.Option("--server", envvar="WANX_SERVER", help="Gateway or ComfyUI URL.")] = (
        "http://127.0.0.1:8188"
    ),
    token: Annotated[str | None, typer.Option("--token", envvar="WANX_TOKEN", help="Bearer token.")] = None,
    mode: Annotated[
        Mode | None, typer.Option("--mode", help="vace only: restyle (default), replace, reference.")
    ] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="Start image (wanx-21) or reference image (vace).")
    ] = None,
    video: Annotated[Path | None, typer.Option("--video", help="Control video, MP4/AVI/MOV (vace).")] = None,
    mask: Annotated[
        Path | None, typer.Option("--mask", help="Mask image, white = region to edit (vace replace).")
    ] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Positive prompt.")] = None,
    negative_prompt: Annotated[str | None, typer.Option("--negative-prompt", help="Negative prompt.")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE, e.g. steps=25 (repeatable).")
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output file (first video) or folder.")] = Path("."),
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the job.")] = 3600.0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    root: Annotated[Path, typer.Option("--workflows-dir", envvar="WANX_WORKFLOWS_DIR", hidden=True)] = DEFAULT_ROOT,
) -> None:
    """Run a shipped workflow by name and download what it makes."""
    name = _graph_name(workflow, mode)
    spec = load_workflows(root)[name]
    files = {k: v for k, v in {"image": image, "video": video, "mask": mask}.items() if v is not None}
    values: dict[str, Any] = _parse_params(spec, param or [])
    values.update({k: v for k, v in {"prompt": prompt, "negative_prompt": negative_prompt}.items() if v is not None})
    _check_files(spec, files)
    graph = load_graph(root, spec)
    # Validate everything before uploading anything: placeholders stand in for the uploaded names.
    problems = check_graph(fill_params(graph, spec, {**values, **{k: p.name for k, p in files.items()}}), load_schema())
    if problems:
        raise GraphInvalid(f"{name}: the filled graph is invalid: " + "; ".join(map(str, problems)))
    state: dict[str, str] = {}
    try:
        paths = asyncio.run(_run(server, token, spec, graph, values, files, output, timeout, progress, state))
    except KeyboardInterrupt:
        if "prompt_id" in state:
            console.print(
                f"job {state['prompt_id']} is still queued or running on {server}; "
                f"see GET /history/{state['prompt_id']}, cancel with POST /interrupt"
            )
        raise
    for path in paths:
        print(path)


def _graph_name(workflow: Workflow, mode: Mode | None) -> str:
    if workflow is Workflow.WANX_21:
        if mode is not None:
            raise UsageError("--mode applies to vace only", hint="Drop --mode, or run 'wanx run vace --mode ...'.")
        return "wanx-21"
    return f"vace-{(mode or Mode.RESTYLE).value}"


def _parse_params(spec: WorkflowSpec, items: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in spec.params:
            raise ParamError(f"--param {item!r}: expected NAME=VALUE with NAME one of {', '.join(spec.params)}")
        if spec.params[key].type is ParamType.FILE:
            raise ParamError(f"--param {key}: files are given with --{key}")
        values[key] = parse_value(spec.params[key], raw)
    return values


def _check_files(spec: WorkflowSpec, files: dict[str, Path]) -> None:
    for key, path in files.items():
        param = spec.params.get(key)
        if param is None or param.type is not ParamType.FILE:
            raise UsageError(f"--{key}: {spec.name} takes no {key}", hint=f"Its inputs: {', '.join(spec.params)}.")
        if not path.is_file():
            raise UsageError(f"--{key} {path}: no such file")
        allowed = VIDEO_SUFFIXES if param.upload == "video" else IMAGE_SUFFIXES
        if path.suffix.lower() not in allowed:
            raise UsageError(
                f"--{key} {path}: unsupported type {path.suffix or '(none)'} (expected {', '.join(sorted(allowed))})"
            )


async def _run(
    server: str,
    token: str | None,
    spec: WorkflowSpec,
    graph: dict[str, Any],
    values: dict[str, Any],
    files: dict[str, Path],
    output: Path,
    timeout: float,
    show: bool,
    state: dict[str, str],
) -> list[Path]:
    from wanx.client import ComfyClient  # aiohttp is slow to import; only running needs it

    async with ComfyClient(server, token=token) as comfy:
        for key, path in files.items():
            values[key] = await comfy.upload(path)
        filled = fill_params(graph, spec, values)

        def submitted(prompt_id: str) -> None:
            state["prompt_id"] = prompt_id
            console.print(f"queued {spec.name} as prompt {prompt_id}")

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not show,
            transient=True,
        ) as bar:
            task = bar.add_task("waiting", total=None)

            def label(node: str | None) -> str:
                meta = filled.get(node or "", {})
                return f"node {node} {meta.get('_meta', {}).get('title') or meta.get('class_type', '')}".strip()

            def on_progress(event: JobProgress) -> None:
                if event.event == "progress":
                    bar.update(task, total=event.max, completed=event.value, description=label(event.node))
                elif event.event == "executing" and event.node is not None:
                    bar.update(task, description=label(event.node))
                elif event.event == "polling":
                    bar.update(task, description="waiting (polling)")

            result = await comfy.run(filled, timeout=timeout, on_progress=on_progress, on_submit=submitted)
        return await _download_all(comfy, result, output)


async def _download_all(comfy: ComfyClient, result: JobResult, output: Path) -> list[Path]:
    if not result.outputs:
        raise GraphInvalid(f"job {result.prompt_id} finished but reported no output files")
    targets = _targets(result.outputs, output)
    return [await comfy.download(item, dest) for item, dest in targets]


def _targets(outputs: tuple[OutputFile, ...], output: Path) -> list[tuple[OutputFile, Path]]:
    """The first video (else the first file) goes to OUTPUT when it names a file; the rest beside it."""
    if output.is_dir() or not output.suffix:
        output.mkdir(parents=True, exist_ok=True)
        return [(item, output / Path(item.filename).name) for item in outputs]
    first = next((o for o in outputs if Path(o.filename).suffix.lower() in VIDEO_SUFFIXES), outputs[0])
    output.parent.mkdir(parents=True, exist_ok=True)
    rest = [(o, output.with_name(f"{output.stem}-{Path(o.filename).name}")) for o in outputs if o is not first]
    return [(first, output), *rest]
