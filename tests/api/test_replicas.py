"""Two replicas of one model: new conversations go to the least loaded one, and a returning
conversation goes back to the replica that holds its KV cache, with or without a session key."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import BackgroundStream, RunningServer, model_block, running_server

MODEL = "gemma-3-270m"
TURN_1 = ("You are a careful assistant. The user keeps a garden with tomatoes, beans, basil and "
          "three rows of carrots, and asks about watering in a dry summer. Turn one: how often?")


@pytest.fixture(scope="module")
def pair(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = model_block(MODEL, gemma_path, replicas=2, n_ctx=1024, parallel=2,
                         chat_template="gemma", threads=1)
    with running_server(config, tmp_path_factory.mktemp("replicas")) as server:
        # the model serves once one replica is ready; these tests need both
        deadline = time.monotonic() + 60
        while any(r["state"] != "ready" for r in replicas(server)):
            assert time.monotonic() < deadline, replicas(server)
            time.sleep(0.05)
        yield server


def replicas(server: RunningServer) -> list[dict]:
    return httpx.get(f"{server.v1}/models/{MODEL}").json()["status"]["replicas"]


def wait_for_running(server: RunningServer, expected: list[int]) -> None:
    deadline = time.monotonic() + 30
    while [r["running"] for r in replicas(server)] != expected:
        assert time.monotonic() < deadline, replicas(server)
        time.sleep(0.02)


def complete(server: RunningServer, prompt: str, **extra: object) -> dict:
    r = httpx.post(server.v1 + "/completions", timeout=60, json={
        "model": MODEL, "prompt": prompt, "max_tokens": 2, "temperature": 0, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_each_replica_is_its_own_engine_process(pair: RunningServer) -> None:
    status = replicas(pair)
    assert len(status) == 2
    assert status[0]["pid"] != status[1]["pid"] and min(r["pid"] for r in status) > 0


@pytest.mark.parametrize("key", [None, "garden-chat"])
def test_a_returning_conversation_goes_back_to_the_replica_holding_its_cache(
        pair: RunningServer, key: str | None) -> None:
    extra = {"prompt_cache_key": key} if key else {}
    prompt = TURN_1 + (f" ({key})" if key else "")
    wait_for_running(pair, [0, 0])
    first_hold = BackgroundStream(pair, MODEL, "Background story one", 900, prompt_cache_key="bg-1")
    wait_for_running(pair, [1, 0])  # replicas tie when idle: the first takes it
    turn_1 = complete(pair, prompt, **extra)  # new: the least loaded replica, the second
    second_hold = BackgroundStream(pair, MODEL, "Background story two", 900, prompt_cache_key="bg-2")
    wait_for_running(pair, [1, 1])  # the next new conversation went to the less loaded second
    # loads tie again, so least-loaded alone would send the next turn to the first replica
    turn_2 = complete(pair, prompt + " Turn two: and in the evening?", **extra)
    first_hold.leave.set()
    second_hold.leave.set()
    first_hold.join(60)
    second_hold.join(60)
    cached = turn_2["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 0.8 * turn_1["usage"]["prompt_tokens"], turn_2["usage"]
