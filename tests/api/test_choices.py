"""`n` > 1 through the official SDK: several choices from one prompt, the prompt computed once
(the other choices start from a copy of its KV), each with its own draw."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.support import RunningServer

MODEL = "gemma-3-270m"


def computed(server: RunningServer) -> int:
    """Prompt tokens the model's engines computed so far, once nothing runs."""
    deadline = time.monotonic() + 10
    while True:
        state = httpx.get(server.base + "/health", timeout=10).json()["models"][MODEL]
        if state["running"] == 0 or time.monotonic() > deadline:
            return sum(r["prompt_tokens_computed"] for r in state["replicas"])
        time.sleep(0.02)


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)


def test_three_choices_share_one_prefill(client: openai.OpenAI, server: RunningServer) -> None:
    story = " ".join(f"On day {i} the ship sailed further north past island {i * 7}." for i in range(12))
    messages = [{"role": "user", "content": f"{story} Continue the log, test {time.time()}:"}]
    before = computed(server)
    answer = client.chat.completions.create(model=MODEL, messages=messages, n=3, max_tokens=16,
                                            temperature=1.0, seed=7,
                                            extra_body={"ignore_eos": True})
    spent = computed(server) - before
    assert [c.index for c in answer.choices] == [0, 1, 2]
    prompt = answer.usage.prompt_tokens  # type: ignore[union-attr]
    assert answer.usage.completion_tokens == 48  # type: ignore[union-attr]  # 16 each
    assert prompt > 100
    assert spent <= prompt + 3 * 2, (spent, prompt)  # once, not three times
    texts = {c.message.content for c in answer.choices}
    assert len(texts) >= 2  # their own draws


def test_n_on_completions_counts_every_choice(client: openai.OpenAI) -> None:
    answer = client.completions.create(model=MODEL, prompt="Once upon a time", n=2, max_tokens=5,
                                       extra_body={"ignore_eos": True})
    assert [c.index for c in answer.choices] == [0, 1]
    assert answer.usage is not None and answer.usage.completion_tokens == 10



@pytest.mark.parametrize("chat", [True, False])
def test_several_choices_stream_together(client: openai.OpenAI, chat: bool) -> None:
    if chat:
        chunks = list(client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Tell a story."}], n=3,
            max_tokens=6, stream=True, stream_options={"include_usage": True},
            extra_body={"ignore_eos": True}))
        texts: dict[int, str] = {}
        for c in chunks:
            for choice in c.choices:
                texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
        finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    else:
        chunks = list(client.completions.create(
            model=MODEL, prompt="Once upon a time", n=3, max_tokens=6, stream=True,
            stream_options={"include_usage": True}, extra_body={"ignore_eos": True}))
        texts = {}
        for c in chunks:
            for choice in c.choices:
                texts[choice.index] = texts.get(choice.index, "") + choice.text
        finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert set(texts) == {0, 1, 2} and all(texts.values())
    assert finishes == ["length"] * 3
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 18 and not chunks[-1].choices
