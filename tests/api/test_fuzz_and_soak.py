"""Bounded fuzzing and a soak, on loopback: generated request bodies get a 4xx in OpenAI's shape or
a 200, never a 5xx; 32 streams with a third hanging up at random leave no busy slot, no request
in flight, no leaked task, and the engine's memory where it was."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import RunningServer, model_block, running_server

MODEL = "gemma-3-270m"

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
anything = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
# generation stays short (a valid body must not run for long), everything else is fair game
small_max = st.one_of(st.integers(min_value=-3, max_value=3), st.sampled_from([2**31, 2**64]),
                      st.text(max_size=3))
message = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["user", "assistant", "system", "tool", "x"]), anything)},
    optional={"content": st.one_of(st.text(max_size=40), anything,
                                   st.lists(st.fixed_dictionaries(
                                       {"type": st.sampled_from(["text", "image_url", ""])},
                                       optional={"text": st.one_of(st.text(max_size=20), anything)}),
                                       max_size=3))})
common = {
    "model": st.one_of(st.just(MODEL), st.text(max_size=10), anything),
    "max_tokens": small_max,
}
optional = {
    "temperature": anything, "top_p": anything, "top_k": anything, "min_p": anything,
    "seed": anything, "stop": anything, "n": anything, "stream": st.booleans(),
    "stream_options": anything, "presence_penalty": anything, "frequency_penalty": anything,
    "user": anything, "prompt_cache_key": anything, "ignore_eos": anything,
    "min_tokens": st.one_of(st.integers(min_value=-2, max_value=2), anything),
    "response_format": st.one_of(anything, st.fixed_dictionaries(
        {"type": st.sampled_from(["json_object", "json_schema", "text", "xml"])},
        optional={"json_schema": anything})),
    "repeat_penalty": anything, "unknown_field": anything,
}
chat_bodies = st.fixed_dictionaries(
    {**common, "messages": st.one_of(st.lists(message, max_size=3), anything)}, optional=optional)
completion_bodies = st.fixed_dictionaries(
    {**common, "prompt": st.one_of(st.text(max_size=40), st.lists(st.integers(-5, 300_000),
                                                                    max_size=5), anything)},
    optional={**optional, "suffix": st.one_of(st.text(max_size=10), anything)})


def check(server: RunningServer, route: str, body: dict) -> None:
    raw = json.dumps(body, allow_nan=True)  # NaN and Infinity are not JSON: they must be 400s
    r = httpx.post(server.v1 + route, content=raw, timeout=60,
                   headers={"content-type": "application/json"})
    assert r.status_code < 500, (r.status_code, r.text, raw)
    if r.status_code != 200:
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, r.text
        assert isinstance(error["message"], str) and error["message"]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=chat_bodies)
def test_generated_chat_bodies_never_get_a_5xx(server: RunningServer, body: dict) -> None:
    check(server, "/chat/completions", body)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=completion_bodies)
def test_generated_completion_bodies_never_get_a_5xx(server: RunningServer, body: dict) -> None:
    check(server, "/completions", body)


@pytest.fixture(scope="module")
def soak_server(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[RunningServer]:
    # no spilled conversations kept: what the engine holds after the soak is what leaked
    config = model_block(MODEL, gemma_path, n_ctx=512, parallel=4, threads=2, ram_mb=0,
                         max_queue=64, max_queue_per_client=0)  # all 32 clients share one address
    with running_server(config, tmp_path_factory.mktemp("soak")) as server:
        yield server


def health(server: RunningServer) -> dict:
    return httpx.get(server.base + "/health", timeout=10).json()


def engine_rss_kib(server: RunningServer) -> int:
    pid = health(server)["models"][MODEL]["replicas"][0]["pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def soak(server: RunningServer, clients: int, seconds: float, seed: int) -> dict[str, int]:
    counts = {"finished": 0, "hung_up": 0, "refused": 0, "errors": 0}
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        n = 0
        while time.monotonic() < end:
            n += 1
            leave_after = rng.randint(1, 12) if rng.random() < 1 / 3 else None
            body = {"model": MODEL, "prompt": f"Client {i} asks question {n}:", "stream": True,
                    "max_tokens": rng.randint(8, 40), "ignore_eos": True}
            outcome = "finished"
            with httpx.stream("POST", server.v1 + "/completions", json=body, timeout=120) as r:
                if r.status_code != 200:
                    outcome = "refused" if r.status_code == 429 else "errors"
                else:
                    chunks = 0
                    for line in r.iter_lines():
                        if line.startswith("data: {"):
                            chunks += 1
                            if '"error"' in line:
                                outcome = "errors"
                        if leave_after is not None and chunks >= leave_after:
                            outcome = "hung_up"
                            break  # closing the response hangs up mid-stream
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return counts


def settled(server: RunningServer, seconds: float = 15) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        state = health(server)
        model = state["models"][MODEL]
        if (model["running"], model["waiting"], state["gateway"]["in_flight"]) == (0, 0, 0):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.1)


def test_soak_leaves_nothing_busy_leaked_or_grown(soak_server: RunningServer) -> None:
    soak(soak_server, clients=8, seconds=3, seed=1)  # warm the allocators up
    before = settled(soak_server)
    rss_before = engine_rss_kib(soak_server)
    counts = soak(soak_server, clients=32, seconds=18, seed=2)
    after = settled(soak_server)
    rss_after = engine_rss_kib(soak_server)
    print(f"soak: {counts}, engine RSS {rss_before} -> {rss_after} KiB, "
          f"gateway tasks {before['gateway']['tasks']} -> {after['gateway']['tasks']}")
    assert counts["errors"] == 0 and counts["finished"] > 0 and counts["hung_up"] > 0
    assert after["gateway"]["tasks"] <= before["gateway"]["tasks"]
    assert rss_after <= rss_before * 1.05, (rss_before, rss_after)
    # and it still answers
    r = httpx.post(soak_server.v1 + "/completions", timeout=30,
                   json={"model": MODEL, "prompt": "Still there?", "max_tokens": 3})
    assert r.status_code == 200
