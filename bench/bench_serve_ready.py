"""Start-up cost of the no-Docker stack: `wanx serve --cpu` to gateway /readyz, against ComfyUI alone to /system_stats.

Both start the same real ComfyUI install (WANX_COMFYUI_DIR or ~/.cache/wanx/comfyui, docs/testing.md) on CPU with
empty model folders; the ratio is what the supervisor, the workflows preload and the gateway add. Skipped (exit 0,
with the reason) when no real ComfyUI or no gateway is available.

    .venv/bin/python bench/bench_serve_ready.py [--runs 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def comfyui_dir() -> Path | None:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wanx" / "comfyui"
    folder = Path(os.environ.get("WANX_COMFYUI_DIR") or cache)
    return folder if (folder / "ComfyUI/main.py").is_file() and (folder / "venv/bin/python").exists() else None


def time_until_200(argv: list[str], url: str, env: dict[str, str], cwd: Path, timeout: float = 600) -> float:
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[:3]} exited with {proc.returncode} before {url} answered")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return time.monotonic() - started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{url} not 200 within {timeout} s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    comfy = comfyui_dir()
    if comfy is None or importlib.util.find_spec("wanx.gateway") is None:
        print("bench_serve_ready: skipped (needs a real ComfyUI, docs/testing.md, and the gateway package)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "models").mkdir()
        direct, stack = [], []
        for _ in range(args.runs):
            port = free_port()
            argv = [str(comfy / "venv/bin/python"), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port)]
            argv += ["--extra-model-paths-config", str(comfy / "extra_model_paths.yaml")]
            argv += ["--output-directory", str(root / "direct-out"), "--input-directory", str(root / "direct-in")]
            direct.append(
                time_until_200(argv, f"http://127.0.0.1:{port}/system_stats", dict(os.environ), comfy / "ComfyUI")
            )
            port, comfy_port = free_port(), free_port()
            argv = [sys.executable, "-m", "wanx", "serve", "--prefix", str(comfy), "--models-dir", str(root / "models")]
            argv += ["--data-dir", str(root / "data"), "--cpu", "--host", "127.0.0.1", "--port", str(port)]
            argv += ["--comfy-port", str(comfy_port)]
            env = {**os.environ, "WANX_TOKEN": secrets.token_urlsafe(16)}
            stack.append(time_until_200(argv, f"http://127.0.0.1:{port}/readyz", env, REPO))
    d, s = statistics.median(direct), statistics.median(stack)
    print(f"ComfyUI alone to /system_stats: {d:.1f} s (median of {args.runs}: {', '.join(f'{x:.1f}' for x in direct)})")
    print(f"wanx serve --cpu to /readyz:    {s:.1f} s (median of {args.runs}: {', '.join(f'{x:.1f}' for x in stack)})")
    print(f"ratio serve/direct: {s / d:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
