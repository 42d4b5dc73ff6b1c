"""An accepted job is never lost: backends and the job service killed mid-job, poison, duplicates, restarts."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable

import pytest

from tests.integration.jobs.conftest import Comfy, JobsServer, call, get, graph, wait_for

pytestmark = pytest.mark.integration

ComfyFactory = Callable[..., Comfy]
JobsFactory = Callable[..., JobsServer]


def _history(server: JobsServer, prompt_id: str) -> dict[str, object]:
    entry = get(f"{server.url}/history/{prompt_id}")
    return entry.get(prompt_id) or {}  # type: ignore[no-any-return]


def test_job_is_accepted_while_no_backend_is_up_and_runs_when_one_comes(
    comfy_factory: ComfyFactory, jobs_factory: JobsFactory
) -> None:
    comfy = comfy_factory(start=False)
    server = jobs_factory([comfy.url])
    prompt_id = str(uuid.uuid4())
    status, answer = server.submit({"prompt": graph(), "prompt_id": prompt_id, "client_id": "c1"})
    assert (status, answer) == (200, {"prompt_id": prompt_id, "number": 1, "node_errors": {}})
    assert get(f"{server.url}/queue")["queue_pending"][0][1] == prompt_id
    comfy.process.start()
    job = server.wait_state(prompt_id, "succeeded")
    assert job["attempts"] == 1
    assert _history(server, prompt_id)["status"]["status_str"] == "success"  # type: ignore[index]


def test_backend_killed_mid_job_is_resubmitted_with_the_same_id_and_completes_once(
    comfy_factory: ComfyFactory, jobs_factory: JobsFactory
) -> None:
    comfy = comfy_factory(step_delay=0.4)
    server = jobs_factory([comfy.url])
    prompt_id = str(uuid.uuid4())
    assert server.submit({"prompt": graph(), "prompt_id": prompt_id})[0] == 200
    wait_for(lambda: comfy.running_id() == prompt_id, what="the backend to start the job")
    comfy.process.kill()
    assert server.job(prompt_id)["state"] == "running"
    comfy.process.start()
    job = server.wait_state(prompt_id, "succeeded")
    assert (job["attempts"], job["crashes"]) == (2, 1)
    assert comfy.posts() == ["/prompt"]  # the restarted backend got it exactly once
    entry = _history(server, prompt_id)
    assert entry["wanx"]["attempts"] == 2  # type: ignore[index]
    assert entry["prompt"][1] == prompt_id  # type: ignore[index]
    assert get(f"{comfy.url}/history/{prompt_id}")[prompt_id]["status"]["status_str"] == "success"


def test_job_service_killed_mid_job_reattaches_without_running_it_again(
    comfy_factory: ComfyFactory, jobs_factory: JobsFactory
) -> None:
    comfy = comfy_factory(step_delay=0.3)
    server = jobs_factory([comfy.url])
    running, waiting = str(uuid.uuid4()), str(uuid.uuid4())
    assert server.submit({"prompt": graph("a"), "prompt_id": running})[0] == 200
    assert server.submit({"prompt": graph("b"), "prompt_id": waiting})[0] == 200
    wait_for(lambda: comfy.running_id() == running, what="the backend to start the first job")
    server.process.kill()
    server.process.start()
    assert server.wait_state(running, "succeeded")["attempts"] == 1
    assert server.wait_state(waiting, "succeeded")["attempts"] == 1
    assert comfy.posts() == ["/prompt", "/prompt"]  # one submission each: re-attached, not re-run


def test_duplicate_submission_replays_or_conflicts(comfy_factory: ComfyFactory, jobs_factory: JobsFactory) -> None:
    comfy = comfy_factory()
    server = jobs_factory([comfy.url])
    prompt_id = str(uuid.uuid4())
    body = {"prompt": graph(), "prompt_id": prompt_id, "client_id": "c1"}
    first = server.submit(body)
    assert first[0] == 200
    assert server.submit(dict(reversed(body.items()))) == first  # same JSON value, key order aside
    status, conflict = server.submit({**body, "prompt": graph("other")})
    assert status == 409
    assert conflict["error"]["type"] == "prompt_id_conflict"
    server.wait_state(prompt_id, "succeeded")
    assert server.submit(body) == first  # still replayed after the job finished
    assert comfy.posts() == ["/prompt"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        pytest.param({"client_id": "x"}, "no_prompt", id="no-prompt"),
        pytest.param({"prompt": graph(), "prompt_id": "ABC"}, "invalid_prompt_id", id="bad-id"),
        pytest.param({"prompt": graph(), "prompt_id": str(uuid.uuid4()).upper()}, "invalid_prompt_id", id="upper"),
        pytest.param({"prompt": {"1": {"inputs": {}}}}, "invalid_prompt", id="no-class-type"),
        pytest.param(
            {"prompt": {"1": {"class_type": "LoadImage", "inputs": {}}}}, "prompt_no_outputs", id="no-outputs"
        ),
    ],
)
def test_invalid_prompts_get_comfyui_400_at_once(
    comfy_factory: ComfyFactory, jobs_factory: JobsFactory, body: dict[str, object], kind: str
) -> None:
    server = jobs_factory([comfy_factory(start=False).url])
    status, answer = server.submit(body)
    assert status == 400
    assert answer["error"]["type"] == kind
    assert answer["node_errors"] == {}
    assert get(f"{server.url}/queue") == {"queue_running": [], "queue_pending": []}


def test_poison_job_is_quarantined_after_killing_its_backend_twice(
    comfy_factory: ComfyFactory, jobs_factory: JobsFactory
) -> None:
    comfy = comfy_factory()
    stop = threading.Event()

    def supervise() -> None:  # what the runtime's supervisor does: restart ComfyUI when it dies
        while not stop.is_set():
            proc = comfy.process.proc
            if proc is not None and proc.poll() is not None:
                # The runner may resubmit the poison job, and the backend die again, before our own
                # readiness probe sees it answer: that is a crash loop, so just restart again.
                with contextlib.suppress(RuntimeError):
                    comfy.process.start()
            stop.wait(0.05)

    supervisor = threading.Thread(target=supervise, daemon=True)
    supervisor.start()
    try:
        server = jobs_factory([comfy.url])
        poison, healthy = str(uuid.uuid4()), str(uuid.uuid4())
        assert server.submit({"prompt": graph(crash=True), "prompt_id": poison})[0] == 200
        assert server.submit({"prompt": graph("ok"), "prompt_id": healthy})[0] == 200
        job = server.wait_state(poison, "poisoned", "failed", "succeeded")
        assert (job["state"], job["crashes"], job["attempts"]) == ("poisoned", 2, 2)
        assert "quarantined" in job["error"]
        entry = _history(server, poison)
        assert entry["status"]["status_str"] == "error"  # type: ignore[index]
        assert entry["status"]["messages"][0][1]["exception_type"] == "wanx_poisoned"  # type: ignore[index]
        assert server.wait_state(healthy, "succeeded")["attempts"] == 1
    finally:
        stop.set()
        supervisor.join(5)


def test_two_backends_share_the_load_and_queue_is_combined(
    comfy_factory: ComfyFactory, jobs_factory: JobsFactory
) -> None:
    first, second = comfy_factory(step_delay=0.3), comfy_factory(step_delay=0.3)
    server = jobs_factory([first.url, second.url])
    ids = [str(uuid.uuid4()) for _ in range(4)]
    for index, prompt_id in enumerate(ids):
        assert server.submit({"prompt": graph(str(index)), "prompt_id": prompt_id})[0] == 200
    queue = wait_for(lambda: len((q := get(f"{server.url}/queue"))["queue_running"]) == 2 and q, what="2 running")
    assert {item[1] for item in queue["queue_running"]} == {first.running_id(), second.running_id()}
    assert [item[1] for item in queue["queue_pending"]] == ids[2:]
    for prompt_id in ids:
        server.wait_state(prompt_id, "succeeded")
    assert len(first.posts()) == 2
    assert len(second.posts()) == 2
    history = get(f"{server.url}/history")
    assert set(history) == set(ids)
    for prompt_id in ids:  # each output is served from the backend that made it
        video = history[prompt_id]["outputs"]["2"]["gifs"][0]
        status, payload = call("GET", f"{server.url}/view?filename={video['filename']}&type=output")
        assert status == 200 and len(payload) == 32 * 64


def test_history_and_outputs_survive_a_restart_of_both(comfy_factory: ComfyFactory, jobs_factory: JobsFactory) -> None:
    comfy = comfy_factory()
    server = jobs_factory([comfy.url])
    prompt_id = str(uuid.uuid4())
    assert server.submit({"prompt": graph(), "prompt_id": prompt_id})[0] == 200
    server.wait_state(prompt_id, "succeeded")
    before = _history(server, prompt_id)
    server.process.kill()
    comfy.process.kill()
    comfy.process.start()  # ComfyUI forgets its history on restart
    server.process.start()
    assert get(f"{comfy.url}/history/{prompt_id}") == {}
    assert _history(server, prompt_id) == before
    assert list(get(f"{server.url}/history?max_items=1")) == [prompt_id]
    video = before["outputs"]["2"]["gifs"][0]  # type: ignore[index]
    assert call("GET", f"{server.url}/api/view?filename={video['filename']}&type=output")[0] == 200


def test_retry_cap_fails_a_job_the_backends_keep_losing(comfy_factory: ComfyFactory, jobs_factory: JobsFactory) -> None:
    comfy = comfy_factory(step_delay=0.4)
    server = jobs_factory([comfy.url], "--max-attempts", "1")
    prompt_id = str(uuid.uuid4())
    assert server.submit({"prompt": graph(), "prompt_id": prompt_id})[0] == 200
    wait_for(lambda: comfy.running_id() == prompt_id, what="the backend to start the job")
    comfy.process.kill()
    comfy.process.start()
    job = server.wait_state(prompt_id, "failed", "succeeded")
    assert (job["state"], job["attempts"]) == ("failed", 1)
    assert "retry cap 1" in job["error"]
    assert comfy.posts() == []
    entry = _history(server, prompt_id)
    assert entry["status"]["messages"][0][1]["exception_type"] == "wanx_lost"  # type: ignore[index]


def test_job_that_finished_while_the_service_was_down_is_collected(
    comfy_factory: ComfyFactory, jobs_factory: JobsFactory
) -> None:
    comfy = comfy_factory(step_delay=0.2)
    server = jobs_factory([comfy.url])
    prompt_id = str(uuid.uuid4())
    assert server.submit({"prompt": graph(), "prompt_id": prompt_id})[0] == 200
    wait_for(lambda: comfy.running_id() == prompt_id, what="the backend to start the job")
    server.process.kill()
    wait_for(lambda: get(f"{comfy.url}/history/{prompt_id}"), what="the backend to finish on its own")
    server.process.start()
    job = server.wait_state(prompt_id, "succeeded")
    assert job["attempts"] == 1
    assert comfy.posts() == ["/prompt"]


def test_node_error_ends_the_job_without_retry(comfy_factory: ComfyFactory, jobs_factory: JobsFactory) -> None:
    comfy = comfy_factory()
    server = jobs_factory([comfy.url])
    prompt_id = str(uuid.uuid4())
    assert server.submit({"prompt": graph("__FAKE_FAIL__"), "prompt_id": prompt_id})[0] == 200
    job = server.wait_state(prompt_id, "failed", "succeeded")
    assert (job["state"], job["attempts"]) == ("failed", 1)
    entry = _history(server, prompt_id)
    assert entry["status"]["status_str"] == "error"  # type: ignore[index]
    assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_error"  # type: ignore[index]


def test_queued_job_can_be_deleted_and_interrupt_reaches_the_backend(
    comfy_factory: ComfyFactory, jobs_factory: JobsFactory
) -> None:
    comfy = comfy_factory(step_delay=0.5)
    server = jobs_factory([comfy.url])
    running, waiting = str(uuid.uuid4()), str(uuid.uuid4())
    assert server.submit({"prompt": graph("a"), "prompt_id": running})[0] == 200
    assert server.submit({"prompt": graph("b"), "prompt_id": waiting})[0] == 200
    wait_for(lambda: comfy.running_id() == running, what="the backend to start the job")
    assert call("POST", f"{server.url}/queue", {"delete": [waiting]})[0] == 200
    assert server.job(waiting)["state"] == "cancelled"
    assert call("POST", f"{server.url}/api/interrupt", {"prompt_id": running})[0] == 200
    assert server.wait_state(running, "cancelled", "failed", "succeeded")["state"] == "cancelled"
    assert get(f"{server.url}/history/{waiting}") == {}
    assert comfy.posts() == ["/prompt"]


def test_job_left_on_a_backend_that_is_no_longer_configured_moves_to_another(
    comfy_factory: ComfyFactory, jobs_factory: JobsFactory
) -> None:
    old, new = comfy_factory(step_delay=0.5), comfy_factory()
    server = jobs_factory([old.url])
    prompt_id = str(uuid.uuid4())
    assert server.submit({"prompt": graph(), "prompt_id": prompt_id})[0] == 200
    wait_for(lambda: old.running_id() == prompt_id, what="the first backend to start the job")
    server.process.kill()
    old.process.kill()
    moved = jobs_factory([new.url])  # same journal, another backend list
    job = moved.wait_state(prompt_id, "succeeded")
    assert (job["attempts"], job["backend"]) == (2, new.url)
    assert job["error"] == ""
