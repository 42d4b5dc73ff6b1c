"""`serve`: the process specs it builds, and a real run with ComfyUI stand-ins behind a recording gateway."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.servers import PYTHON, REPO, free_port, wait_http
from wanx.cli import app
from wanx.errors import ConfigError
from wanx.supervise import ServeSettings, build_specs

pytestmark = pytest.mark.integration

# ComfyUI's main.py stand-in: takes the arguments serve passes and runs the fake ComfyUI on that port.
MAIN = f"""
import argparse, os, sys
p = argparse.ArgumentParser()
p.add_argument("--port"); p.add_argument("--listen"); p.add_argument("--output-directory")
p.add_argument("--cpu", action="store_true")
args, _ = p.parse_known_args()
assert args.listen == "127.0.0.1", args.listen
open(os.path.join(os.path.dirname(args.output_directory), f"comfy-{{args.port}}.json"), "w").write(
    __import__("json").dumps({{"argv": sys.argv[1:], "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                               "vhs": os.environ.get("VHS_STRICT_PATHS")}}))
os.execv(sys.executable, [sys.executable, {str(REPO / "tests/helpers/fake_comfy.py")!r},
         "--port", args.port, "--root", os.path.dirname(args.output_directory)])
"""
GATEWAY = """
import json, sys, time
open(sys.argv[1], "w").write(json.dumps(sys.argv[2:]))
time.sleep(60)
"""


def make_prefix(tmp_path: Path) -> Path:
    prefix = tmp_path / "prefix"
    (prefix / "ComfyUI").mkdir(parents=True)
    (prefix / "ComfyUI/main.py").write_text(MAIN)
    (prefix / "venv/bin").mkdir(parents=True)
    shim = prefix / "venv/bin/python"  # a wrapper, not a symlink: a symlink would lose the test venv
    shim.write_text(f'#!/bin/sh\nexec {PYTHON} "$@"\n')
    shim.chmod(0o755)
    return prefix


def settings(tmp_path: Path, **overrides: object) -> ServeSettings:
    prefix = tmp_path / "prefix"
    values: dict[str, object] = {"prefix": prefix, "models_dir": tmp_path / "models", "data_dir": tmp_path / "data"}
    values.update(overrides)
    return ServeSettings(**values)  # type: ignore[arg-type]


def test_one_comfyui_per_gpu_and_one_upstream_each(tmp_path: Path) -> None:
    make_prefix(tmp_path)
    specs = build_specs(settings(tmp_path, gpus=(2, 3), comfy_port=9000), {"WANX_TOKEN": "t"})
    names = [s.name for s in specs]
    assert names == ["comfyui-gpu2", "comfyui-gpu3", "gateway"]
    for spec, port, gpu in zip(specs[:2], (9000, 9001), ("2", "3"), strict=True):
        argv = list(spec.argv)
        assert argv[argv.index("--listen") + 1] == "127.0.0.1"
        assert argv[argv.index("--port") + 1] == str(port)
        assert spec.env["CUDA_VISIBLE_DEVICES"] == gpu
        assert spec.env["VHS_STRICT_PATHS"] == "1"
        assert spec.env["WANX_TOKEN"] == "t"
        assert "--cpu" not in argv
    gateway = list(specs[2].argv)
    assert [gateway[i + 1] for i, a in enumerate(gateway) if a == "--upstream"] == [
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9001",
    ]
    # The models dir moved away from the install's extra_model_paths.yaml: serve writes its own.
    extra = Path(specs[0].argv[specs[0].argv.index("--extra-model-paths-config") + 1])
    assert extra == tmp_path / "data/extra_model_paths.yaml"
    assert str(tmp_path / "models") in extra.read_text()


def test_cpu_only_and_split_roles(tmp_path: Path) -> None:
    make_prefix(tmp_path)
    specs = build_specs(settings(tmp_path, cpu=True), {})
    assert [s.name for s in specs] == ["comfyui", "gateway"]
    assert "--cpu" in specs[0].argv
    assert "CUDA_VISIBLE_DEVICES" not in specs[0].env
    assert [s.name for s in build_specs(settings(tmp_path, only="comfyui"), {})] == ["comfyui"]
    assert [s.name for s in build_specs(settings(tmp_path, only="gateway"), {})] == ["gateway"]
    with pytest.raises(ConfigError, match="--only web"):
        build_specs(settings(tmp_path, only="web"), {})


def test_missing_install_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no ComfyUI install there") as caught:
        build_specs(settings(tmp_path), {})
    assert "wanx install --prefix" in caught.value.hint


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["serve", "--cpu", "--gpus", "0"], "--cpu and --gpus: pick one", id="cpu-and-gpus"),
        pytest.param(["serve", "--gpus", "a,b"], "expected comma-separated GPU indexes", id="bad-gpus"),
        pytest.param(["install", "--source-override", "nothing"], "expected NAME=URL_OR_PATH", id="bad-override"),
    ],
)
def test_cli_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert message in str(result.exception)


def write_driver(tmp_path: Path, port: int, record: Path, *, install_workflows: bool) -> Path:
    (tmp_path / "gateway.py").write_text(GATEWAY)
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import os, sys\nfrom pathlib import Path\n"
        "from wanx.supervise import ServeSettings, serve\n"
        f"s = ServeSettings(prefix=Path({str(tmp_path / 'prefix')!r}), models_dir=Path({str(tmp_path / 'models')!r}),"
        f" data_dir=Path({str(tmp_path / 'data')!r}), gpus=(0, 1), comfy_port={port},"
        f" install_workflows={install_workflows},"
        f" gateway_command=(sys.executable, {str(tmp_path / 'gateway.py')!r}, {str(record)!r}))\n"
        "sys.exit(serve(s, environ=dict(os.environ)))\n"
    )
    return driver


def test_failed_workflows_preload_stops_the_stack_loudly(tmp_path: Path) -> None:
    make_prefix(tmp_path)
    (tmp_path / "prefix/workflows").mkdir()  # an empty copy: the preload cannot find the UI files
    port = free_port()
    driver = write_driver(tmp_path, port, tmp_path / "gateway.json", install_workflows=True)
    proc = subprocess.run([PYTHON, str(driver)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"wanx workflows install --user-dir {tmp_path}/data/user: exit" in proc.stderr
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/system_stats", timeout=1)


def test_serve_runs_two_backends_and_stops_on_sigterm(tmp_path: Path) -> None:
    make_prefix(tmp_path)
    port = free_port()
    record = tmp_path / "gateway.json"
    driver = write_driver(tmp_path, port, record, install_workflows=False)
    proc = subprocess.Popen([PYTHON, str(driver)], cwd=REPO)
    try:
        for offset in (0, 1):
            wait_http(f"http://127.0.0.1:{port + offset}/system_stats", timeout=30, proc=proc)
        stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port + 1}/system_stats", timeout=5))
        assert "system" in stats
        deadline = time.monotonic() + 10
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        gateway_args = json.loads(record.read_text())
        assert gateway_args[gateway_args.index("--listen") + 1] == "0.0.0.0:8080"
        seen = json.loads((tmp_path / f"data/comfy-{port + 1}.json").read_text())
        assert seen["cuda"] == "1"
        assert seen["vhs"] == "1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/system_stats", timeout=1)


def test_wanx_install_failure_exits_1_with_message_and_hint(tmp_path: Path) -> None:
    lock = tmp_path / "comfyui.lock.yaml"
    lock.write_text("version: 1\ncomfyui: {name: ComfyUI, repo: x, commit: abc, version: '1'}\nnode_packs: []\n")
    argv = [PYTHON, "-m", "wanx", "install", "--prefix", str(tmp_path / "p"), "--lock", str(lock)]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert "commit 'abc' is not a full 40-character lowercase hex hash" in proc.stderr
    assert "Fix comfyui.lock.yaml" in proc.stderr
    assert not (tmp_path / "p/ComfyUI").exists()
