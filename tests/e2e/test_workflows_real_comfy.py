"""The shipped workflows on a real ComfyUI at the pinned commits (CPU, placeholder model files).

Enable: install it with the runtime installer into ``${XDG_CACHE_HOME:-~/.cache}/wanx/comfyui`` (or point
``WANX_COMFYUI_DIR`` at such a prefix: ``ComfyUI/main.py`` and ``venv/bin/python``). The browser tests also
need Chromium at /usr/bin/chromium. The server starts once for this module (about 20 s on 2 cores).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.real_comfy import comfyui_prefix, requires_comfyui
from tests.helpers.servers import free_port, run_process
from tests.unit.workflows.conftest import WORKFLOWS, shipped
from wanx.client import ComfyClient
from wanx.workflows.params import fill_params, load_workflows
from wanx.workflows.schema import load_schema, schema_from_data, trim_object_info

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
UI_SOURCES = {"wanx-21.json": "wanx-21", "vace.json": "vace-replace"}


PREFIX = comfyui_prefix()
pytestmark.append(requires_comfyui)


@pytest.fixture(scope="module")
def comfy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real ComfyUI on 127.0.0.1 with its own data folders; the shipped UI workflows preloaded."""
    data = tmp_path_factory.mktemp("comfy-data")
    for folder in ("input", "output", "temp", "user"):
        (data / folder).mkdir()
    installed = subprocess.run(
        [sys.executable, "-m", "wanx", "workflows", "install", "--user-dir", str(data / "user")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    port = free_port()
    argv = [
        str(PREFIX / "venv/bin/python"), str(PREFIX / "ComfyUI/main.py"), "--cpu", "--listen", "127.0.0.1",
        "--port", str(port), "--disable-auto-launch",
        "--input-directory", str(data / "input"), "--output-directory", str(data / "output"),
        "--temp-directory", str(data / "temp"), "--user-directory", str(data / "user"),
        "--database-url", f"sqlite:///{data / 'user' / 'comfyui.db'}",
    ]  # fmt: skip
    extra = PREFIX / "extra_model_paths.yaml"
    if extra.exists():
        argv += ["--extra-model-paths-config", str(extra)]
    with run_process(argv, ready_url=f"http://127.0.0.1:{port}/system_stats", timeout=180):
        yield f"http://127.0.0.1:{port}", data


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


def test_check_against_the_live_server(comfy: tuple[str, Path]) -> None:
    base, _ = comfy
    result = subprocess.run(
        [sys.executable, "-m", "wanx", "workflows", "check", "--server", base],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shipped_schema = load_schema()
    live = schema_from_data(trim_object_info(_get(f"{base}/object_info"), classes=shipped_schema.classes))
    assert live.classes == shipped_schema.classes  # the shipped trimmed schema is exactly the pinned server's


def test_preloaded_workflows_are_listed(comfy: tuple[str, Path]) -> None:
    base, _ = comfy
    listed = _get(f"{base}/api/userdata?dir=workflows&recurse=true&split=false")
    assert sorted(listed) == ["vace.json", "wanx-21.json"]


def _clip(path: Path, frames: int) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("needs ffmpeg on PATH to make a test clip")
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=96x64:rate=16:duration={frames / 16}",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def _mask(path: Path) -> Path:
    """A 96x64 greyscale PNG, white in the middle: written by hand so the test needs no imaging library."""
    import struct
    import zlib

    rows = b"".join(b"\x00" + bytes(255 if 24 <= x < 72 and 16 <= y < 48 else 0 for x in range(96)) for y in range(64))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 96, 64, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )
    return path


MODEL_NODES = ("11", "13", "14", "15", "16", "17", "24", "27", "30", "31")
CONTROL_OUTPUT = {"vace-replace": "58", "vace-restyle": "42"}  # what feeds WanVaceToVideo.control_video


def _control_half(name: str, graph: dict[str, Any]) -> dict[str, Any]:
    """A shipped vace graph without its model nodes: the control video it would feed VACE, saved as a video."""
    for node_id in MODEL_NODES:
        del graph[node_id]
    graph["32"]["inputs"]["images"] = [CONTROL_OUTPUT[name], 0]
    return graph


def _frames(path: Path) -> tuple[int, bytes]:
    """Frame count and the first frame as 64x48 RGB bytes, read with ffprobe/ffmpeg."""
    count = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    first = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return int(count), first


def _pixel(frame: bytes, x: int, y: int) -> tuple[int, ...]:
    offset = (y * 64 + x) * 3
    return tuple(frame[offset : offset + 3])


@pytest.mark.parametrize("name", sorted(CONTROL_OUTPUT))
async def test_vace_control_half_runs_on_cpu(comfy: tuple[str, Path], tmp_path: Path, name: str) -> None:
    """The vace front end on the real nodes: frame count carried through (4n+1), mask on every frame."""
    base, _ = comfy
    spec = load_workflows(WORKFLOWS)[name]
    async with ComfyClient(base) as client:
        values: dict[str, Any] = {"video": await client.upload(_clip(tmp_path / "clip.mp4", 20))}
        if name == "vace-replace":
            values["mask"] = await client.upload(_mask(tmp_path / "mask.png"))
        values.update(width=64, height=48)  # frames stays 81: the 20-frame clip is shorter
        graph = _control_half(name, fill_params(shipped(name), spec, values))
        result = await client.run(graph, timeout=300)
        (video_out,) = [o for o in result.outputs if o.kind == "gifs"]
        dest = await client.download(video_out, tmp_path / "control.mp4")
    assert dest.read_bytes()[4:8] == b"ftyp"
    count, first = _frames(dest)
    assert count == 17  # 20 frames in, cut to 4n+1 = 17 by the "Wan" load format, and that count carried through
    assert len(first) == 64 * 48 * 3  # resized to the requested size
    if name == "vace-replace":  # the masked middle is grey, the corner keeps the clip
        assert all(abs(c - 127) < 12 for c in _pixel(first, 32, 24)), _pixel(first, 32, 24)
        assert not all(abs(c - 127) < 12 for c in _pixel(first, 2, 2))


async def test_failure_is_reported_with_the_node(comfy: tuple[str, Path], tmp_path: Path) -> None:
    """A real execution error (the placeholder VAE file is empty) surfaces as JobFailed naming the node."""
    from wanx.errors import JobFailed

    base, _ = comfy
    spec = load_workflows(WORKFLOWS)["vace-reference"]
    async with ComfyClient(base) as client:
        image = await client.upload(_mask(tmp_path / "ref.png"))
        graph = fill_params(shipped("vace-reference"), spec, {"image": image, "steps": 1, "frames": 5})
        with pytest.raises(JobFailed) as info:
            await client.run(graph, timeout=300)
    assert info.value.node_id is not None and "failed at node" in str(info.value)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)")
@pytest.mark.parametrize("ui_name", sorted(UI_SOURCES))
def test_ui_workflow_loads_in_the_web_page(comfy: tuple[str, Path], ui_name: str) -> None:
    """The page opens the UI file with no error dialog, and turns it back into exactly the shipped API graph."""
    sync_api = pytest.importorskip("playwright.sync_api")
    base, _ = comfy
    ui = json.loads((WORKFLOWS / ui_name).read_text(encoding="utf-8"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(base)
            page.wait_for_function(
                "window.app && window.app.graph && Object.keys(LiteGraph.registered_node_types).length > 100",
                timeout=90_000,
            )
            page.keyboard.press("Escape")  # the templates browser a new user sees first
            result = page.evaluate(
                """async (ui) => {
                    await window.app.loadGraphData(ui);
                    await new Promise((resolve) => setTimeout(resolve, 1500));
                    const visible = [...document.querySelectorAll('.p-dialog, .comfy-modal')]
                        .filter((d) => d.offsetParent !== null).map((d) => d.innerText.slice(0, 200));
                    const prompt = await window.app.graphToPrompt();
                    const nodes = window.app.graph._nodes;
                    return {
                        dialogs: visible.filter((text) => !text.startsWith('Templates')),
                        unknown: nodes.filter((n) => !LiteGraph.registered_node_types[n.type]).map((n) => n.type),
                        errors: nodes.filter((n) => n.has_errors).map((n) => n.id),
                        count: nodes.length,
                        output: prompt.output,
                    };
                }""",
                ui,
            )
        finally:
            browser.close()
    assert result["dialogs"] == [] and result["unknown"] == [] and result["errors"] == []
    assert result["count"] == len(ui["nodes"])
    source = shipped(UI_SOURCES[ui_name])
    sent = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in result["output"].items()}
    assert sent == {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in source.items()}
