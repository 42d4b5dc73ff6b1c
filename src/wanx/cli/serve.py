"""`wanx install` (the pinned ComfyUI stack into a prefix) and `wanx serve` (ComfyUI + gateway, supervised)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from wanx.cli._output import console
from wanx.errors import UsageError
from wanx.install import InstallSettings, Mode, install_stack, source_overrides_from_env
from wanx.logs import configure_logging
from wanx.supervise import ServeSettings, default_prefix, serve

REPO_ROOT = Path(__file__).resolve().parents[3]

PrefixOpt = Annotated[
    Path | None,
    typer.Option("--prefix", help="Install folder. Default: $WANX_PREFIX or ~/.local/share/wanx."),
]
ModelsOpt = Annotated[
    Path | None, typer.Option("--models-dir", help="Models folder. Default: $WANX_MODELS_DIR or <prefix>/models.")
]


def _prefix(value: Path | None) -> Path:
    return (value or default_prefix(os.environ)).expanduser().resolve()


def _models(value: Path | None, prefix: Path) -> Path:
    return (value or Path(os.environ.get("WANX_MODELS_DIR") or prefix / "models")).expanduser().resolve()


def install(
    prefix: PrefixOpt = None,
    models_dir: ModelsOpt = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="CPU mode: local CPU torch, no CUDA.")] = False,
    lock: Annotated[Path, typer.Option(help="ComfyUI lock file.")] = REPO_ROOT / "comfyui.lock.yaml",
    constraints: Annotated[
        Path | None, typer.Option(help="pip constraints. Default: constraints/comfyui-{gpu,cpu}.txt by mode.")
    ] = None,
    source_override: Annotated[
        list[str] | None,
        typer.Option("--source-override", help="NAME=URL_OR_PATH for one repository (also WANX_GIT_SOURCE_<NAME>)."),
    ] = None,
    mirror: Annotated[
        str | None, typer.Option(help="URL prefix or folder replacing https://github.com/ (also WANX_GIT_MIRROR).")
    ] = None,
    workflows: Annotated[Path | None, typer.Option(help="Shipped workflows folder to install.")] = None,
    torch_spec: Annotated[
        str | None,
        typer.Option(help="GPU mode: torch requirements to install first (WANX_TORCH_SPEC)."),
    ] = None,
    torch_index_url: Annotated[
        str | None, typer.Option(help="GPU mode: index for --torch-spec (WANX_TORCH_INDEX_URL).")
    ] = None,
    python: Annotated[str, typer.Option(help="Interpreter that creates ComfyUI's venv.")] = "python3",
) -> None:
    """Install ComfyUI and the three node packs at their pinned commits, in their own venv."""
    root = _prefix(prefix)
    mode = Mode.CPU if cpu else Mode.GPU
    sources, env_mirror = source_overrides_from_env(os.environ)
    for item in source_override or []:
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise UsageError(f"--source-override {item!r}: expected NAME=URL_OR_PATH")
        sources[name.upper().replace("-", "_")] = value
    spec = torch_spec or os.environ.get("WANX_TORCH_SPEC") or ""
    default_workflows = REPO_ROOT / "workflows"
    settings = InstallSettings(
        prefix=root,
        lock_path=lock,
        constraints=constraints or REPO_ROOT / "constraints" / f"comfyui-{mode.value}.txt",
        models_dir=_models(models_dir, root),
        mode=mode,
        python=python,
        sources=sources,
        mirror=mirror or env_mirror,
        workflows_dir=workflows or (default_workflows if default_workflows.is_dir() else None),
        torch_spec=tuple(spec.split()),
        torch_index_url=torch_index_url or os.environ.get("WANX_TORCH_INDEX_URL") or None,
    )
    result = install_stack(settings, on_step=lambda message: console.print(f"[dim]install[/dim] {message}"))
    console.print(
        f"ComfyUI installed in {result.comfyui_dir} ({result.seconds} s). Start it: wanx serve --prefix {root}"
    )


def serve_command(
    prefix: PrefixOpt = None,
    models_dir: ModelsOpt = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="input/, output/, user/. Default: $WANX_DATA_DIR or <prefix>/data"),
    ] = None,
    gpus: Annotated[str | None, typer.Option(help="One ComfyUI per GPU, e.g. 0,1 (ports 8188, 8189, ...).")] = None,
    cpu: Annotated[bool, typer.Option("--cpu", help="ComfyUI --cpu: to try the UI and API; very slow.")] = False,
    host: Annotated[str, typer.Option(help="Gateway listen address.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Gateway port.")] = 8080,
    comfy_port: Annotated[int, typer.Option(help="First ComfyUI port (always on 127.0.0.1).")] = 8188,
    only: Annotated[str | None, typer.Option(help="Run one side alone: comfyui or gateway (split containers).")] = None,
    no_workflows: Annotated[
        bool, typer.Option("--no-workflows", help="Do not install the shipped workflows into the user folder.")
    ] = False,
) -> None:
    """Run ComfyUI (one per GPU) and the gateway as supervised processes until stopped."""
    if cpu and gpus:
        raise UsageError("--cpu and --gpus: pick one (CPU mode runs a single ComfyUI)")
    root = _prefix(prefix)
    try:
        gpu_ids = tuple(int(g) for g in gpus.split(",")) if gpus else ()
    except ValueError as exc:
        raise UsageError(f"--gpus {gpus!r}: expected comma-separated GPU indexes such as 0,1") from exc
    settings = ServeSettings(
        prefix=root,
        models_dir=_models(models_dir, root),
        data_dir=(data_dir or Path(os.environ.get("WANX_DATA_DIR") or root / "data")).expanduser().resolve(),
        cpu=cpu,
        gpus=gpu_ids,
        gateway_host=host,
        gateway_port=port,
        comfy_port=comfy_port,
        install_workflows=not no_workflows,
        only=only,
    )
    configure_logging(level=os.environ.get("WANX_LOG_LEVEL", "info"), fmt=os.environ.get("WANX_LOG_FORMAT", "json"))
    raise typer.Exit(serve(settings, environ=os.environ))


def register(root: typer.Typer) -> None:
    """Mount `wanx install` and `wanx serve`."""
    root.command("install")(install)
    root.command("serve")(serve_command)
