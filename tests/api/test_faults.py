"""Faults an engine cannot survive, injected with failpoints: the gateway never claims ready for a
model that cannot decode, heals the CPU fault that extra buffer types cause, ends a crash loop in a
named `failed` state with the reason, and keeps serving everything else."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.support import (
    RunningServer,
    free_port,
    model_block,
    model_status,
    running_server,
    wait_for_state,
)

SICK = "sick"
WELL = "well"


def complete(server: RunningServer, model: str) -> httpx.Response:
    return httpx.post(server.v1 + "/completions", timeout=60,
                      json={"model": model, "prompt": "Hello", "max_tokens": 3})


def watch_states(port: int, seen: set[str], stop: threading.Event) -> None:
    """Record every state /v1/models reports for SICK, from the moment the server answers."""
    while not stop.is_set():
        try:
            seen.add(httpx.get(f"http://127.0.0.1:{port}/v1/models/{SICK}").json()["status"]["state"])
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.02)


def test_an_engine_that_segfaults_at_its_first_decode_ends_failed_with_the_reason(
        gemma_path: Path, tmp_path: Path) -> None:
    config = (model_block(SICK, gemma_path, n_ctx=256, parallel=1, threads=1)
              + model_block(WELL, gemma_path, n_ctx=256, parallel=1, threads=1))
    env = {"GATEWAY_FAILPOINTS": f"engine.decode@{SICK}=segfault"}
    started = time.monotonic()
    with running_server(config, tmp_path, env=env, healthy=False, timeout=90) as server:
        wait_for_state(server, SICK, "failed")
        assert time.monotonic() - started < 60  # it says why within a minute
        sick = model_status(server, SICK)
        assert "SIGSEGV" in sick["error"] and "before it was ready" in sick["error"]
        assert "Segmentation fault" in sick["error"]  # the last lines the engine wrote
        # the heal (extra buffer types off) was tried once, then it gave up
        replica = sick["replicas"][0]
        assert replica["extra_buffers"] is False and replica["state"] == "failed"
        health = httpx.get(server.base + "/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        r = complete(server, SICK)
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_failed"
        assert "SIGSEGV" in r.json()["error"]["message"] and "retry-after" in r.headers
        # the gateway and the other model are untouched
        assert server.process.poll() is None
        assert complete(server, WELL).status_code == 200
        # the admin route tries again (and it fails again, the same way)
        restarts = replica["restarts"]
        assert httpx.post(f"{server.base}/admin/models/{SICK}/load").status_code == 200
        assert model_status(server, SICK)["state"] in ("loading", "restarting")
        wait_for_state(server, SICK, "failed")
        assert model_status(server, SICK)["replicas"][0]["restarts"] > restarts


def test_never_ready_while_it_cannot_decode(gemma_path: Path, tmp_path: Path) -> None:
    config = model_block(SICK, gemma_path, n_ctx=256, parallel=1, threads=1,
                         cpu_extra_buffers=False)
    env = {"GATEWAY_FAILPOINTS": "engine.decode=exit"}
    seen: set[str] = set()
    port = free_port()
    stop = threading.Event()
    watcher = threading.Thread(target=watch_states, args=(port, seen, stop), daemon=True)
    watcher.start()
    try:
        with running_server(config, tmp_path, env=env, healthy=False, timeout=90,
                            port=port) as server:
            wait_for_state(server, SICK, "failed")
            assert "exited with status 3" in model_status(server, SICK)["error"]
    finally:
        stop.set()
        watcher.join(5)
    assert "ready" not in seen and "failed" in seen


def test_the_cpu_fault_of_extra_buffer_types_heals_by_turning_them_off(
        gemma_path: Path, tmp_path: Path) -> None:
    config = model_block(SICK, gemma_path, n_ctx=256, parallel=1, threads=1)
    env = {"GATEWAY_FAILPOINTS": "engine.decode=segfault_with_extra_buffers"}
    with running_server(config, tmp_path, env=env, timeout=90) as server:
        health = httpx.get(server.base + "/health").json()
        replica = health["models"][SICK]["replicas"][0]
        assert replica["state"] == "ready" and replica["extra_buffers"] is False
        assert replica["note"] == "CPU backend crashed with extra buffer types; running without them"
        assert "crashed with extra buffer types" in server.log()
        r = complete(server, SICK)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3


def test_cpu_extra_buffers_true_forbids_the_heal(gemma_path: Path, tmp_path: Path) -> None:
    config = model_block(SICK, gemma_path, n_ctx=256, parallel=1, threads=1,
                         cpu_extra_buffers=True)
    env = {"GATEWAY_FAILPOINTS": "engine.decode=segfault_with_extra_buffers"}
    with running_server(config, tmp_path, env=env, healthy=False, timeout=90) as server:
        sick = model_status(server, SICK)
        assert sick["state"] == "failed" and "SIGSEGV" in sick["error"]
        assert sick["replicas"][0]["extra_buffers"] is True and sick["replicas"][0]["note"] is None
