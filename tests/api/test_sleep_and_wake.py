"""Sleeping models: `keep_alive_s` puts an idle model's engines to sleep and a request wakes it;
a `load_at_start = false` model is loaded by its first request; when the (declared) GPU memory is
short for a wake, the least recently used idle model sleeps first; one host-RAM budget holds
across two models spilling conversations at once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from gateway.placement.footprint import footprint
from tests.api.test_multi_model import alive, engine_pid
from tests.support import (BackgroundStream, RunningServer, free_port, model_block, model_status, running_server,
                           wait_for_state)
from tests.tiny_model import write_tiny_gguf

NAP = "nap"  # keep_alive_s = 2
LAZY = "lazy"  # load_at_start = false
N_CTX = 512


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("tiny-sleep")
    return write_tiny_gguf(where / "a.gguf"), write_tiny_gguf(where / "b.gguf", seed=1)


@pytest.fixture(scope="module")
def sleepy(tiny_files: tuple[Path, Path], extra_buffers: bool,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    first, second = tiny_files
    config = (model_block(NAP, first, n_ctx=N_CTX, parallel=1, threads=1, keep_alive_s=2,
                          cpu_extra_buffers=extra_buffers)
              + model_block(LAZY, second, n_ctx=N_CTX, parallel=1, threads=1, load_at_start=False,
                            cpu_extra_buffers=extra_buffers))
    with running_server(config, tmp_path_factory.mktemp("sleepy")) as server:
        yield server


def metric(server: RunningServer, name: str, **labels: str) -> float | None:
    text = httpx.get(server.base + "/metrics", timeout=10).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def gone(pid: int, seconds: float = 15) -> bool:
    """Whether the process ends within `seconds` (an engine stops within its stop timeout)."""
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def sse_lines(server: RunningServer, model: str) -> list[str]:
    body = {"model": model, "prompt": "abc", "max_tokens": 4, "stream": True}
    with httpx.stream("POST", server.v1 + "/completions", json=body, timeout=120) as r:
        assert r.status_code == 200
        return [line for line in r.iter_lines() if line]


def test_an_idle_model_sleeps_after_keep_alive_s_and_a_request_wakes_it(sleepy: RunningServer
                                                                       ) -> None:
    pid = engine_pid(sleepy, NAP)
    status = wait_for_state(sleepy, NAP, "sleeping", seconds=30)
    assert status["replicas"] == [] and status["keep_alive_s"] == 2
    assert gone(pid)  # its engine process ends: its memory is free
    health = httpx.get(sleepy.base + "/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"  # sleeping is fine
    assert metric(sleepy, "gateway_model_awake", model=NAP) == 0
    assert (metric(sleepy, "gateway_model_load_seconds", model=NAP) or 0) > 0  # kept asleep
    # the next request wakes it and succeeds (no 503)
    client = openai.OpenAI(base_url=sleepy.v1, api_key="x", max_retries=0)
    reply = client.completions.create(model=NAP, prompt="abc", max_tokens=3)
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    assert model_status(sleepy, NAP)["state"] == "ready"
    assert engine_pid(sleepy, NAP) != pid
    assert metric(sleepy, "gateway_model_awake", model=NAP) == 1
    # asleep again, a stream says it is loading (SSE comments), then streams as usual
    wait_for_state(sleepy, NAP, "sleeping", seconds=30)
    lines = sse_lines(sleepy, NAP)
    assert lines[0].startswith(": loading ") and lines[0].endswith("%")
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert chunks and chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert lines[-1] == "data: [DONE]"
    wait_for_state(sleepy, NAP, "sleeping", seconds=30)
    shown = subprocess.run([sys.executable, "-m", "gateway", "status", "--once", "--url",
                            sleepy.v1], capture_output=True, text=True, timeout=60, check=True,
                           env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"}).stdout
    assert NAP in shown and "sleeping" in shown  # the status view shows it asleep
    log = sleepy.log()
    assert f"model {NAP} goes to sleep: idle for 2 s" in log
    assert f"model {NAP} wakes for a request" in log


def test_a_model_not_loaded_at_start_is_loaded_by_its_first_request(sleepy: RunningServer
                                                                    ) -> None:
    status = model_status(sleepy, LAZY)
    if status["state"] == "sleeping":  # (not yet woken by an earlier test)
        assert status["replicas"] == []
        assert metric(sleepy, "gateway_model_awake", model=LAZY) == 0
    client = openai.OpenAI(base_url=sleepy.v1, api_key="x", max_retries=0)
    reply = client.chat.completions.create(model=LAZY, max_tokens=3,
                                           messages=[{"role": "user", "content": "abc"}])
    assert reply.choices[0].finish_reason == "length"
    status = model_status(sleepy, LAZY)
    assert status["state"] == "ready" and len(status["replicas"]) == 1
    load_s = metric(sleepy, "gateway_model_load_seconds", model=LAZY)
    assert load_s is not None and 0 < load_s < 120
    # it has no keep_alive_s: it stays
    assert status["keep_alive_s"] is None


def test_a_wake_shows_its_load_progress_and_the_waiting_request(sleepy: RunningServer) -> None:
    wait_for_state(sleepy, NAP, "sleeping", seconds=30)
    body = {"model": NAP, "prompt": "abc", "max_tokens": 2}
    request = threading.Thread(target=httpx.post, args=(sleepy.v1 + "/completions",),
                               kwargs={"json": body, "timeout": 120})
    request.start()
    seen: list[dict] = []
    while request.is_alive():
        status = model_status(sleepy, NAP)
        if status["state"] in ("loading", "restarting"):
            seen.append(status)
        time.sleep(0.01)
    assert seen, "the wake was never seen loading"
    assert all(0 <= s["load_progress"] <= 100 for s in seen)
    assert all(s["waiting"] >= 1 for s in seen)  # the request that woke it waits for it
    assert model_status(sleepy, NAP)["state"] == "ready"


def test_responses_and_native_streams_also_say_loading_while_it_wakes(sleepy: RunningServer
                                                                     ) -> None:
    wait_for_state(sleepy, NAP, "sleeping", seconds=30)
    body = {"model": NAP, "input": "abc", "stream": True, "max_output_tokens": 3}
    with httpx.stream("POST", sleepy.v1 + "/responses", json=body, timeout=120) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line]
    assert lines[0].startswith(": loading ")
    events = [line[7:] for line in lines if line.startswith("event: ")]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    wait_for_state(sleepy, NAP, "sleeping", seconds=30)
    body = {"model": NAP, "prompt": "abc", "n_predict": 3, "stream": True}
    with httpx.stream("POST", sleepy.base + "/completion", json=body, timeout=120) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line]
    assert lines[0].startswith(": loading ")
    assert json.loads(lines[-1][6:])["stop"] is True  # llama.cpp's shape, no [DONE]


def test_many_requests_at_once_wake_a_sleeping_model_once(sleepy: RunningServer) -> None:
    wait_for_state(sleepy, NAP, "sleeping", seconds=30)
    before = sleepy.log().count(f"model {NAP} wakes for a request")
    results: list[int] = []

    def ask(i: int) -> None:
        r = httpx.post(sleepy.v1 + "/completions", timeout=120,
                       json={"model": NAP, "prompt": f"abc {i}", "max_tokens": 2,
                             "stream": i % 2 == 0})
        results.append(r.status_code)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert results == [200] * 12
    assert sleepy.log().count(f"model {NAP} wakes for a request") == before + 1
    assert len(model_status(sleepy, NAP)["replicas"]) == 1


def test_requests_waiting_for_a_wake_are_bounded_by_max_queue(
        tiny_files: tuple[Path, Path], extra_buffers: bool, tmp_path: Path) -> None:
    tiny, _ = tiny_files
    config = model_block("lazy", tiny, n_ctx=N_CTX, parallel=1, threads=1, load_at_start=False,
                         max_queue=2, cpu_extra_buffers=extra_buffers)
    with running_server(config, tmp_path) as server:
        answers: list[httpx.Response] = []

        def ask(i: int) -> None:
            answers.append(httpx.post(server.v1 + "/completions", timeout=120, json={
                "model": "lazy", "prompt": "abc", "max_tokens": 2, "stream": i % 2 == 1}))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        refused = [r for r in answers if r.status_code == 429]
        assert len(answers) == 6 and len(refused) >= 1  # past max_queue waiting for the load
        assert all(r.json()["error"]["code"] == "queue_full" and "retry-after" in r.headers
                   for r in refused)  # a plain 429, streamed or not
        assert sum(r.status_code == 200 for r in answers) >= 2 and len(refused) <= 4
        assert model_status(server, "lazy")["state"] == "ready"


def test_tokenize_on_a_sleeping_model_needs_no_engine(sleepy: RunningServer) -> None:
    wait_for_state(sleepy, NAP, "sleeping", seconds=30)
    r = httpx.post(sleepy.base + "/tokenize", json={"model": NAP, "content": "abc"}, timeout=30)
    assert r.status_code == 200 and len(r.json()["tokens"]) >= 3
    assert model_status(sleepy, NAP)["state"] == "sleeping"  # the vocabulary stayed here


def test_an_unloaded_model_still_answers_503_not_a_wake(sleepy: RunningServer) -> None:
    client = openai.OpenAI(base_url=sleepy.v1, api_key="x", max_retries=0)
    client.completions.create(model=LAZY, prompt="a", max_tokens=1)
    assert httpx.post(f"{sleepy.base}/admin/models/{LAZY}/unload", timeout=30).status_code == 200
    r = httpx.post(sleepy.v1 + "/completions", json={"model": LAZY, "prompt": "x", "max_tokens": 2})
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unloaded"
    assert model_status(sleepy, LAZY)["state"] == "unloaded"
    # a stream for it: one clean error frame, then [DONE]
    body = {"model": LAZY, "prompt": "x", "max_tokens": 2, "stream": True}
    r = httpx.post(sleepy.v1 + "/completions", json=body, timeout=30)
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unloaded"
    assert httpx.post(f"{sleepy.base}/admin/models/{LAZY}/load", timeout=30).status_code == 200
    wait_for_state(sleepy, LAZY, "ready")


# ---- GPU memory: the least recently used idle model sleeps for a wake ----------------------


def test_a_wake_puts_the_least_recently_used_idle_model_to_sleep_when_vram_is_short(
        tiny_files: tuple[Path, Path], extra_buffers: bool, tmp_path: Path) -> None:
    first, second = tiny_files
    context_mb = 64
    need_mb = footprint(first, N_CTX, 1, 512).total / (1 << 20) + context_mb
    gpu_gib = need_mb * 1.5 / 1024  # room for one model, not two
    config = (f"[server]\ngpu_context_mb = {context_mb}\ngpu_discovery = \"declared\"\n"
              f"[[gpus]]\nindex = 0\nmemory_gib = {gpu_gib:.4f}\nname = \"declared\"\n"
              + model_block("one", first, n_ctx=N_CTX, parallel=1, threads=1,
                            cpu_extra_buffers=extra_buffers)
              + model_block("two", second, n_ctx=N_CTX, parallel=1, threads=1,
                            load_at_start=False, cpu_extra_buffers=extra_buffers))
    with running_server(config, tmp_path) as server:
        one = model_status(server, "one")
        assert one["replicas"][0]["gpus"] == [0]
        assert model_status(server, "two")["state"] == "sleeping"  # placement left it out
        pid = engine_pid(server, "one")
        r = httpx.post(server.v1 + "/completions", timeout=120,
                       json={"model": "two", "prompt": "abc", "max_tokens": 2})
        assert r.status_code == 200, r.text
        assert model_status(server, "one")["state"] == "sleeping" and gone(pid)
        two = model_status(server, "two")
        assert two["state"] == "ready" and two["replicas"][0]["gpus"] == [0]
        assert "making room on the GPUs for two" in server.log()
        # and back: the other one is now the least recently used
        r = httpx.post(server.v1 + "/completions", timeout=120,
                       json={"model": "one", "prompt": "abc", "max_tokens": 2})
        assert r.status_code == 200, r.text
        assert model_status(server, "two")["state"] == "sleeping"
        assert httpx.get(server.base + "/health", timeout=10).json()["status"] == "ok"


def test_no_model_is_put_to_sleep_while_busy_or_for_a_model_that_cannot_fit(
        gemma_path: Path, tiny_files: tuple[Path, Path], extra_buffers: bool,
        tmp_path: Path) -> None:
    tiny, _ = tiny_files
    context_mb = 64
    gemma_mb = footprint(gemma_path, N_CTX, 1, 512).total / (1 << 20) + context_mb
    tiny_mb = footprint(tiny, N_CTX, 1, 512).total / (1 << 20) + context_mb
    gpu_gib = (gemma_mb + tiny_mb / 2) / 1024  # either fits, not both
    config = (f"[server]\ngpu_context_mb = {context_mb}\ngpu_discovery = \"declared\"\n"
              f"[[gpus]]\nindex = 0\nmemory_gib = {gpu_gib:.4f}\n"
              + model_block("chat", gemma_path, n_ctx=N_CTX, parallel=1, threads=1,
                            chat_template="gemma", cpu_extra_buffers=extra_buffers)
              + model_block("small", tiny, n_ctx=N_CTX, parallel=1, threads=1,
                            load_at_start=False, cpu_extra_buffers=extra_buffers)
              + model_block("huge", tiny, n_ctx=65536, parallel=64, load_at_start=False,
                            cpu_extra_buffers=extra_buffers))
    with running_server(config, tmp_path, timeout=120) as server:
        pid = engine_pid(server, "chat")
        stream = BackgroundStream(server, "chat", "Tell me a long story.", 400)
        deadline = time.monotonic() + 60
        while stream.first_text_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stream.first_text_at is not None
        # chat is answering: it is not put to sleep, and the wake is refused for now
        r = httpx.post(server.v1 + "/completions", timeout=120,
                       json={"model": "small", "prompt": "abc", "max_tokens": 2})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "insufficient_gpu_memory"
        assert "retry-after" in r.headers
        assert model_status(server, "small")["state"] == "sleeping"
        assert alive(pid) and stream.is_alive()
        stream.leave.set()
        stream.join(60)
        wait_until_idle(server, "chat")
        # a model too big for the GPUs even alone: nothing is put to sleep for it
        r = httpx.post(server.v1 + "/completions", timeout=120,
                       json={"model": "huge", "prompt": "abc", "max_tokens": 2})
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_failed", r.text
        assert "with no other model on the GPUs" in r.json()["error"]["message"]
        assert model_status(server, "chat")["state"] == "ready" and alive(pid)
        # idle now: the chat model sleeps for the small one
        r = httpx.post(server.v1 + "/completions", timeout=120,
                       json={"model": "small", "prompt": "abc", "max_tokens": 2})
        assert r.status_code == 200, r.text
        assert model_status(server, "chat")["state"] == "sleeping"


def wait_until_idle(server: RunningServer, model: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        status = model_status(server, model)
        if status["running"] == 0 and status["waiting"] == 0:
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


# ---- one host-RAM budget for every engine's saved conversations ----------------------------


def ram_config(tiny_files: tuple[Path, Path], extra_buffers: bool, budget_kib: int) -> str:
    first, second = tiny_files
    return (f"[server]\nhost_ram_mb = {budget_kib / 1024}\n"
            + model_block("left", first, n_ctx=N_CTX, parallel=1, threads=1,
                          cpu_extra_buffers=extra_buffers)
            + model_block("right", second, n_ctx=N_CTX, parallel=1, threads=1,
                          cpu_extra_buffers=extra_buffers))


def conversations(server: RunningServer, model: str, count: int, errors: list[str]) -> None:
    """`count` new conversations of ~200 tokens: each spills the one before out of the slot."""
    for i in range(count):
        prompt = " ".join(f"{chr(97 + (i + j) % 26)}{chr(97 + j % 26)}" for j in range(100))
        r = httpx.post(server.v1 + "/completions", timeout=120,
                       headers={"x-session-id": f"{model}-{i}"},
                       json={"model": model, "prompt": prompt, "max_tokens": 2})
        if r.status_code != 200:
            errors.append(r.text)


def held(server: RunningServer) -> dict[str, dict]:
    return {m: model_status(server, m)["replicas"][0]["conversations"] for m in ("left", "right")}


def test_the_host_ram_budget_holds_across_two_models_spilling_at_once(
        tiny_files: tuple[Path, Path], extra_buffers: bool, tmp_path: Path) -> None:
    budget = 512 * 1024
    errors: list[str] = []
    with running_server(ram_config(tiny_files, extra_buffers, budget // 1024), tmp_path) as server:
        assert all(c["ram_budget_bytes"] == budget // 2 for c in held(server).values())  # at start
        threads = [threading.Thread(target=conversations, args=(server, m, 8, errors))
                   for m in ("left", "right")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert not errors
        now = held(server)
        assert sum(c["ram_budget_bytes"] for c in now.values()) <= budget
        assert sum(c["ram_bytes"] for c in now.values()) <= budget
        for model, c in now.items():
            assert c["spills"] >= 4, (model, c)  # they did spill
            assert 0 < c["ram_bytes"] <= c["ram_budget_bytes"], (model, c)
            assert c["in_ram"] < c["spills"]  # older ones were pushed out to keep the budget
        shares = metric(server, "gateway_session_cache_budget_bytes", model="left")
        assert shares == now["left"]["ram_budget_bytes"]
        spills = metric(server, "gateway_conversation_spills_total", model="left")
        assert spills is not None and spills >= 4
        ram = metric(server, "gateway_conversation_bytes", model="left", where="ram")
        assert ram == now["left"]["ram_bytes"]
        resident = metric(server, "gateway_conversation_bytes", model="left", where="resident")
        assert resident is not None and resident > 0  # the last conversation, in its slot


def test_a_busy_model_gets_the_ram_an_idle_one_leaves(
        tiny_files: tuple[Path, Path], extra_buffers: bool, tmp_path: Path) -> None:
    budget = 512 * 1024
    errors: list[str] = []
    with running_server(ram_config(tiny_files, extra_buffers, budget // 1024), tmp_path) as server:
        conversations(server, "right", 1, errors)  # the idle one holds a little
        conversations(server, "left", 16, errors)
        assert not errors
        deadline = time.monotonic() + 10
        while True:
            now = held(server)
            if now["left"]["ram_bytes"] > budget // 2 or time.monotonic() > deadline:
                break
            conversations(server, "left", 2, errors)
        # it holds more than an equal share would allow, and the total still holds
        assert now["left"]["ram_bytes"] > budget // 2, now
        assert now["left"]["ram_budget_bytes"] > budget // 2
        assert sum(c["ram_budget_bytes"] for c in now.values()) <= budget
        assert sum(c["ram_bytes"] for c in now.values()) <= budget
        assert now["right"]["in_ram"] + now["right"]["resident"] >= 1  # the idle one kept its own


def test_a_small_host_loads_its_engines_one_at_a_time(
        tiny_files: tuple[Path, Path], extra_buffers: bool, tmp_path: Path) -> None:
    first, second = tiny_files
    config = ("[server]\nparallel_loads = 1\n"
              + model_block("p", first, n_ctx=N_CTX, parallel=1, threads=1,
                            cpu_extra_buffers=extra_buffers)
              + model_block("q", second, n_ctx=N_CTX, parallel=1, threads=1,
                            cpu_extra_buffers=extra_buffers))
    port = free_port()
    most_loading = [0]
    polls = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()["models"]
            except (httpx.HTTPError, ValueError):
                time.sleep(0.01)
                continue
            polls[0] += 1
            loading = [r for m in models.values() for r in m["replicas"]
                       if r["state"] in ("loading", "restarting") and r.get("pid")
                       and alive(r["pid"])]
            most_loading[0] = max(most_loading[0], len(loading))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with running_server(config, tmp_path, port=port) as server:
            health = httpx.get(server.base + "/health", timeout=10).json()
            assert all(m["state"] == "ready" for m in health["models"].values())
    finally:
        stop.set()
        watcher.join(5)
    assert polls[0] > 10 and most_loading[0] == 1  # never two engine processes loading at once


def test_a_model_that_healed_wakes_without_extra_buffers_at_once(
        tiny_files: tuple[Path, Path], tmp_path: Path) -> None:
    tiny, _ = tiny_files
    config = model_block("healed", tiny, n_ctx=N_CTX, parallel=1, threads=1, keep_alive_s=1)
    env = {"GATEWAY_FAILPOINTS": "engine.decode=segfault_with_extra_buffers"}  # the AMX fault
    with running_server(config, tmp_path, env=env, timeout=90) as server:
        replica = model_status(server, "healed")["replicas"][0]
        assert replica["restarts"] == 1 and replica["extra_buffers"] is False  # it healed
        wait_for_state(server, "healed", "sleeping", seconds=30)
        r = httpx.post(server.v1 + "/completions", timeout=120,
                       json={"model": "healed", "prompt": "abc", "max_tokens": 2})
        assert r.status_code == 200, r.text
        replica = model_status(server, "healed")["replicas"][0]
        # woken without them: no second crash, and it still says why
        assert replica["restarts"] == 0 and replica["extra_buffers"] is False
        assert replica["note"] == "CPU backend crashed with extra buffer types; running without them"


def test_with_a_disk_tier_conversations_come_back_after_the_model_slept(
        gemma_path: Path, extra_buffers: bool, tmp_path: Path) -> None:
    config = model_block("chat", gemma_path, n_ctx=N_CTX, parallel=2, threads=1,
                         chat_template="gemma", keep_alive_s=1, dir=str(tmp_path / "kv"),
                         cpu_extra_buffers=extra_buffers)
    client_messages = [{"role": "user", "content": "Name three rivers of Europe, please."}]
    with running_server(config, tmp_path / "srv") as server:
        client = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0,
                               default_headers={"x-session-id": "rivers"})
        first = client.chat.completions.create(model="chat", messages=client_messages,
                                               max_tokens=12, temperature=0)
        assert first.usage is not None
        wait_for_state(server, "chat", "sleeping", seconds=30)
        saved = list((tmp_path / "kv").rglob("*.kv"))
        assert saved  # written to disk as the engine stopped
        second = client.chat.completions.create(
            model="chat", max_tokens=4, temperature=0,
            messages=[*client_messages,
                      {"role": "assistant", "content": first.choices[0].message.content or ""},
                      {"role": "user", "content": "And one more?"}])
        assert second.usage is not None and second.usage.prompt_tokens_details is not None
        # the woken engine restored the conversation instead of computing it again
        assert second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens
        conversations = model_status(server, "chat")["replicas"][0]["conversations"]
        assert conversations["restores"] >= 1
