"""The supervisor with real subprocesses: restart with backoff, give up on a crash loop, stop on SIGTERM."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.servers import PYTHON, REPO
from wanx.supervise import ProcessSpec, RestartPolicy, Supervisor

pytestmark = pytest.mark.integration

FAST = RestartPolicy(initial=0.05, maximum=0.2, stable=30, max_restarts=5, window=60, stop_timeout=3)


def child(tmp_path: Path, name: str, body: str) -> ProcessSpec:
    """A Python child that appends its pid to ``<name>.starts`` and then runs ``body``."""
    script = tmp_path / f"{name}.py"
    starts = tmp_path / f"{name}.starts"
    script.write_text(
        "import os, signal, sys, time\n"
        f"starts = {str(starts)!r}\n"
        "with open(starts, 'a') as fh: fh.write(f'{os.getpid()}\\n')\n"
        "count = len(open(starts).read().split())\n" + textwrap.dedent(body)
    )
    return ProcessSpec(name, (PYTHON, str(script)))


def starts(tmp_path: Path, name: str) -> list[int]:
    path = tmp_path / f"{name}.starts"
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(") ", 1)[1][0] != "Z"


def run_in_thread(supervisor: Supervisor) -> tuple[threading.Thread, list[int]]:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run()), daemon=True)
    thread.start()
    return thread, result


def test_crashed_child_is_restarted_and_stop_ends_everything(tmp_path: Path) -> None:
    flaky = child(tmp_path, "flaky", "if count < 3: sys.exit(1)\ntime.sleep(60)\n")
    steady = child(tmp_path, "steady", "time.sleep(60)\n")
    supervisor = Supervisor([flaky, steady], FAST)
    thread, result = run_in_thread(supervisor)

    wait_for(lambda: len(starts(tmp_path, "flaky")) == 3)
    time.sleep(0.3)
    assert len(starts(tmp_path, "flaky")) == 3  # the third run stays up: no more restarts
    assert len(starts(tmp_path, "steady")) == 1  # a sibling's crash does not touch it
    pids = [starts(tmp_path, "flaky")[-1], starts(tmp_path, "steady")[0]]
    assert all(alive(pid) for pid in pids)

    supervisor.stop()
    thread.join(10)
    assert result == [0]
    assert not any(alive(pid) for pid in pids)


def test_crash_loop_gives_up_with_the_child_exit_code(tmp_path: Path) -> None:
    broken = child(tmp_path, "broken", "sys.exit(3)\n")
    steady = child(tmp_path, "steady", "time.sleep(60)\n")
    policy = RestartPolicy(initial=0.01, maximum=0.05, stable=30, max_restarts=2, window=60, stop_timeout=3)
    started = time.monotonic()
    code = Supervisor([broken, steady], policy).run()
    assert code == 3
    assert len(starts(tmp_path, "broken")) == 3  # first run and two restarts
    assert time.monotonic() - started < 10
    assert not alive(starts(tmp_path, "steady")[0])


def test_backoff_doubles_between_quick_crashes(tmp_path: Path) -> None:
    stamps = tmp_path / "stamps"
    body = f"open({str(stamps)!r}, 'a').write(f'{{time.monotonic()}}\\n')\nsys.exit(1)\n"
    broken = child(tmp_path, "broken", body)
    policy = RestartPolicy(initial=0.2, maximum=0.8, stable=30, max_restarts=3, window=60, stop_timeout=3)
    assert Supervisor([broken], policy).run() == 1  # an exit code 1 child that keeps crashing
    times = [float(line) for line in stamps.read_text().split()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    assert 0.15 < gaps[0] < 0.6  # 0.2 s
    assert gaps[1] > 0.35  # 0.4 s
    assert gaps[2] > 0.7  # 0.8 s (the maximum)


def test_sigterm_is_forwarded_and_the_supervisor_exits_zero(tmp_path: Path) -> None:
    marker = tmp_path / "got-term"
    body = f"""
    def on_term(signum, frame):
        open({str(marker)!r}, "w").write("TERM")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    time.sleep(60)
    """
    spec = child(tmp_path, "graceful", body)
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys\n"
        "from wanx.supervise import ProcessSpec, RestartPolicy, Supervisor\n"
        f"spec = ProcessSpec('graceful', {spec.argv!r})\n"
        "sys.exit(Supervisor([spec], RestartPolicy(stop_timeout=5)).run())\n"
    )
    proc = subprocess.Popen([PYTHON, str(driver)], cwd=REPO)
    try:
        wait_for(lambda: starts(tmp_path, "graceful") and (tmp_path / "graceful.starts").stat().st_size > 0)
        time.sleep(0.3)  # let the child install its handler
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    assert marker.read_text() == "TERM"
    assert not alive(starts(tmp_path, "graceful")[0])


def test_child_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    stubborn = child(tmp_path, "stubborn", "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n")
    policy = RestartPolicy(stop_timeout=0.5)
    supervisor = Supervisor([stubborn], policy)
    thread, result = run_in_thread(supervisor)
    wait_for(lambda: bool(starts(tmp_path, "stubborn")))
    time.sleep(0.3)
    began = time.monotonic()
    supervisor.stop()
    thread.join(10)
    assert result == [0]
    assert 0.4 < time.monotonic() - began < 5
    assert not alive(starts(tmp_path, "stubborn")[0])


def test_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    from wanx.errors import InstallError

    with pytest.raises(InstallError, match="ghost: cannot start /nonexistent/ghost"):
        Supervisor([ProcessSpec("ghost", ("/nonexistent/ghost",))], FAST).run()
