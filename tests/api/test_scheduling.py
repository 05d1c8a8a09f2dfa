"""Latency-first scheduling through the real server: ongoing turns first, bounded queue, timeouts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support import BackgroundStream, RunningServer, model_block, running_server

MODEL = "gemma-3-270m"


def server_with(gemma_path: Path, workdir: Path, **fields: object):  # type: ignore[no-untyped-def]
    fields = {"n_ctx": 512, "chat_template": "gemma", "threads": 2, **fields}
    config = model_block(MODEL, gemma_path, **fields)
    return running_server(config, workdir)


def stream(server: RunningServer, prompt: str, max_tokens: int, **extra: object) -> BackgroundStream:
    return BackgroundStream(server, MODEL, prompt, max_tokens, **extra)


def wait_running(server: RunningServer, running: int, waiting: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = httpx.get(server.base + "/health").json()["models"][MODEL]
        if state["running"] >= running and state["waiting"] >= waiting:
            return
        assert time.monotonic() < deadline, state
        time.sleep(0.02)


def first_text_order(server: RunningServer) -> list[str]:
    """Two slots busy, two new conversations queued, then an ongoing turn; then one slot frees."""
    httpx.post(server.v1 + "/completions", timeout=60, json={
        "model": MODEL, "prompt": "Chat A, turn 1: hello", "max_tokens": 4,
        "prompt_cache_key": "chat-a"}).raise_for_status()
    first = stream(server, "Long story one", 450)
    second = stream(server, "Long story two", 450)
    wait_running(server, 2, 0)
    new = []
    for i in range(2):  # one after the other, so their arrival order is known
        new.append(stream(server, f"New conversation {i}", 3))
        wait_running(server, 2, i + 1)
    ongoing = stream(server, "Chat A, turn 1: hello and more", 3, prompt_cache_key="chat-a")
    wait_running(server, 2, 3)
    first.leave.set()
    for s in [*new, ongoing]:
        s.join(120)
    second.leave.set()
    named = {"ongoing": ongoing, "new0": new[0], "new1": new[1]}
    return sorted(named, key=lambda n: named[n].first_text_at or float("inf"))


@pytest.fixture(scope="module")
def latency_first(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with server_with(gemma_path, tmp_path_factory.mktemp("lf"), parallel=2,
                     policy="latency_first") as server:
        yield server


def test_ongoing_turn_is_served_before_earlier_new_conversations(latency_first: RunningServer) -> None:
    assert first_text_order(latency_first)[0] == "ongoing"


def test_fifo_policy_serves_in_arrival_order(gemma_path: Path, tmp_path: Path) -> None:
    with server_with(gemma_path, tmp_path, parallel=2, policy="fifo") as server:
        assert first_text_order(server) == ["new0", "new1", "ongoing"]


@pytest.fixture(scope="module")
def tiny_queue(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # runners hang up when the test says so; the one that must outlast the queue timeout has
    # 900 tokens to do it in
    with server_with(gemma_path, tmp_path_factory.mktemp("tq"), parallel=1, max_queue=1,
                     n_ctx=1024, queue_timeout_s=3.0) as server:
        yield server


def test_full_queue_is_429_with_retry_after(tiny_queue: RunningServer) -> None:
    runner = stream(tiny_queue, "Long story", 450)
    wait_running(tiny_queue, 1, 0)
    queued = stream(tiny_queue, "Waiting one", 2)
    wait_running(tiny_queue, 1, 1)
    r = httpx.post(tiny_queue.v1 + "/completions", json={"model": MODEL, "prompt": "x", "stream": True})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    error = r.json()["error"]
    assert error["code"] == "queue_full" and error["type"] == "rate_limit_error"
    client = openai.OpenAI(base_url=tiny_queue.v1, api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.completions.create(model=MODEL, prompt="x", max_tokens=2)
    runner.leave.set()  # well within the queue timeout: the queued request gets the slot
    runner.join(120)
    queued.join(120)
    assert any(": queued position=1" in line for line in queued.lines)
    assert [line for line in queued.lines if line][-1] == "data: [DONE]"
    assert '"finish_reason":"length"' in "".join(queued.lines)


def test_queue_timeout_is_503_and_frees_the_place(tiny_queue: RunningServer) -> None:
    runner = stream(tiny_queue, "Long story", 900)
    wait_running(tiny_queue, 1, 0)
    started = time.monotonic()
    r = httpx.post(tiny_queue.v1 + "/completions", timeout=60,
                   json={"model": MODEL, "prompt": "patient", "max_tokens": 2})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "queue_timeout"
    assert 2.5 < time.monotonic() - started < 15
    deadline = time.monotonic() + 2
    while httpx.get(tiny_queue.base + "/health").json()["models"][MODEL]["waiting"] != 0:
        assert time.monotonic() < deadline, "the expired request kept its place"
        time.sleep(0.02)
    runner.leave.set()
    runner.join(120)


def test_cancelled_while_queued_frees_its_place(tiny_queue: RunningServer) -> None:
    runner = stream(tiny_queue, "Long story", 450)
    wait_running(tiny_queue, 1, 0)
    with httpx.stream("POST", tiny_queue.v1 + "/completions", timeout=30,
                      json={"model": MODEL, "prompt": "leaving", "stream": True}) as r:
        assert r.status_code == 200
        wait_running(tiny_queue, 1, 1)
    deadline = time.monotonic() + 5
    while httpx.get(tiny_queue.base + "/health").json()["models"][MODEL]["waiting"]:
        assert time.monotonic() < deadline, "the cancelled request kept its place"
        time.sleep(0.02)
    late = stream(tiny_queue, "Taking its place", 2)
    wait_running(tiny_queue, 1, 1)  # accepted, not refused
    runner.leave.set()
    runner.join(120)
    late.join(120)
    assert late.status == 200 and [line for line in late.lines if line][-1] == "data: [DONE]"
    assert '"finish_reason":"length"' in "".join(late.lines)


def test_an_ongoing_turn_takes_back_a_borrowed_slot_within_a_step(gemma_path: Path,
                                                                  tmp_path: Path) -> None:
    """Both slots answer new conversations, one of them in the reserved slot (borrowed); an
    ongoing turn arrives: the borrower gives the slot back at the next step, so the ongoing turn's
    first text comes while the other answer moves on by a token or two (steps, not seconds), and
    the borrower then finishes its answer."""
    with server_with(gemma_path, tmp_path, parallel=2, reserved_slots=1) as server:
        httpx.post(server.v1 + "/completions", timeout=60, json={
            "model": MODEL, "prompt": "Chat A, turn 1: hello", "max_tokens": 4,
            "prompt_cache_key": "chat-a"}).raise_for_status()
        first = stream(server, "Long story one", 120)
        wait_running(server, 1, 0)
        borrower = stream(server, "Long story two", 120)
        deadline = time.monotonic() + 60
        while len(borrower.text_times) < 3:  # both answer: the reserved slot is lent out
            assert time.monotonic() < deadline and borrower.is_alive()
            time.sleep(0.01)
        sent = time.monotonic()
        ongoing = stream(server, "Chat A, turn 1: hello and more", 3, prompt_cache_key="chat-a")
        ongoing.join(60)
        assert ongoing.status == 200 and ongoing.first_text_at is not None
        meanwhile = [t for t in first.text_times if sent < t < ongoing.first_text_at]
        assert len(meanwhile) <= 3, f"the other answer went on {len(meanwhile)} tokens first"
        first.join(120)
        borrower.join(120)
        assert borrower.status == 200 and len(borrower.text_times) >= 100
        assert any('"finish_reason":"length"' in line.replace(" ", "")
                   for line in borrower.lines[-4:])  # its whole answer, after the pause
