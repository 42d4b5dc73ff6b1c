"""How long the job service takes to resubmit a lost job once its backend answers again.

Each round: a job runs on a ComfyUI stand-in, the stand-in is SIGKILLed mid-job and started again on the
same port; t0 = its /system_stats answering again, t1 = the job's prompt_id showing in its /queue (the
resubmission was accepted). Reference: one direct POST /prompt to the same backend, measured the same way.
Run: ``make bench-jobs`` (or ``.venv/bin/python bench/jobs_recovery.py --rounds 5 --poll 0.5``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers.servers import PYTHON, Process, free_port  # noqa: E402

GRAPH = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
    "2": {"class_type": "VHS_VideoCombine", "inputs": {"filename_prefix": "B", "images": ["1", 0]}},
}


def _post(url: str, body: object) -> object:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _until(predicate: object, *, timeout: float = 30.0, step: float = 0.002) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return time.monotonic()
        except OSError:
            pass
        time.sleep(step)
    raise TimeoutError("condition not met")


def _queued(backend: str, prompt_id: str) -> bool:
    queue = _get(f"{backend}/queue")
    items = queue["queue_running"] + queue["queue_pending"]  # type: ignore[index]
    return any(item[1] == prompt_id for item in items)


def one_round(backend: Process, url: str, jobs: str) -> tuple[float, float]:
    prompt_id = str(uuid.uuid4())
    _post(f"{jobs}/prompt", {"prompt": GRAPH, "prompt_id": prompt_id})
    _until(lambda: _queued(url, prompt_id))
    backend.kill()
    backend.proc = subprocess.Popen(backend.argv, stdout=subprocess.DEVNULL, start_new_session=True)
    t0 = _until(lambda: _get(f"{url}/system_stats"))
    t1 = _until(lambda: _queued(url, prompt_id))
    _until(lambda: _get(f"{jobs}/wanx/jobs/{prompt_id}")["state"] == "succeeded")  # type: ignore[index]
    # reference: a direct submission to the same backend, from send to visible in its queue
    direct = str(uuid.uuid4())
    start = time.monotonic()
    _post(f"{url}/prompt", {"prompt": GRAPH, "prompt_id": direct})
    t_direct = _until(lambda: _queued(url, direct) or _get(f"{url}/history/{direct}"))
    _until(lambda: _get(f"{url}/history/{direct}"))
    return t1 - t0, t_direct - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.5, help="runner poll interval in seconds (the default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port, jobs_port = free_port(), free_port()
        url, jobs = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{jobs_port}"
        fake = [PYTHON, str(REPO / "tests/helpers/fake_comfy.py"), "--port", str(port), "--root", tmp]
        backend = Process([*fake, "--step-delay", "0.3"], ready_url=f"{url}/system_stats")
        serve = [PYTHON, str(REPO / "tests/helpers/jobs_server.py"), "--port", str(jobs_port)]
        serve += ["--poll", str(args.poll), "--journal", f"{tmp}/jobs.sqlite3", "--upstream", url]
        server = Process(serve, ready_url=f"{jobs}/prompt")
        backend.start()
        server.start()
        try:
            rounds = [one_round(backend, url, jobs) for _ in range(args.rounds)]
        finally:
            server.kill()
            backend.kill()
    recovery = statistics.median(r for r, _ in rounds)
    direct = statistics.median(d for _, d in rounds)
    print(f"jobs recovery: backend answering -> lost job accepted again, {args.rounds} rounds, poll {args.poll} s")
    print(
        f"  recovery median {recovery * 1000:.1f} ms (min {min(r for r, _ in rounds) * 1000:.1f}, "
        f"max {max(r for r, _ in rounds) * 1000:.1f})"
    )
    print(f"  reference: direct POST /prompt -> in queue, median {direct * 1000:.1f} ms")
    print(f"  ratio recovery / poll interval: {recovery / args.poll:.2f} (<= 1 means within one poll)")
    print(f"  ratio recovery / direct submit: {recovery / direct:.1f}")


if __name__ == "__main__":
    main()
