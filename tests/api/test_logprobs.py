"""Logprobs and logit_bias through the official SDK on the real model: chat and completions,
streamed and not, in OpenAI's shapes."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support import RunningServer

MODEL = "gemma-3-270m"
ASK = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)


def test_chat_logprobs_are_log_probabilities_with_sorted_alternatives(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=12,
                                            temperature=0, logprobs=True, top_logprobs=5)
    entries = answer.choices[0].logprobs.content  # type: ignore[union-attr]
    assert entries and len(entries) == answer.usage.completion_tokens  # type: ignore[union-attr]
    assert "".join(e.token for e in entries) == answer.choices[0].message.content
    for e in entries:
        assert e.logprob <= 0 and len(e.top_logprobs) == 5
        alternatives = [t.logprob for t in e.top_logprobs]
        assert alternatives == sorted(alternatives, reverse=True) and alternatives[0] <= 0
        assert e.top_logprobs[0].token == e.token  # greedy: the drawn token is the likeliest
        assert e.logprob == pytest.approx(alternatives[0])
        assert bytes(e.bytes or []).decode("utf-8", errors="replace") == e.token
    plain = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=2)
    assert plain.choices[0].logprobs is None  # only when asked


def test_streamed_chat_logprobs_cover_every_token(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=ASK, max_tokens=10, temperature=0, logprobs=True, stream=True,
        stream_options={"include_usage": True}))
    entries = [e for c in chunks if c.choices and c.choices[0].logprobs
               for e in c.choices[0].logprobs.content or []]
    usage = chunks[-1].usage
    assert usage is not None and len(entries) == usage.completion_tokens
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "".join(e.token for e in entries) == text
    assert all(e.logprob <= 0 and e.top_logprobs == [] for e in entries)


@pytest.mark.parametrize("stream", [False, True])
def test_completion_logprobs_in_the_legacy_shape(client: openai.OpenAI, stream: bool) -> None:
    kwargs = dict(model=MODEL, prompt="The capital of France is", max_tokens=8, temperature=0,
                  logprobs=3)
    if stream:
        chunks = list(client.completions.create(stream=True, **kwargs))  # type: ignore[call-overload]
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        parts = [c.choices[0].logprobs for c in chunks if c.choices and c.choices[0].logprobs]
        tokens = [t for p in parts for t in p.tokens]
        offsets = [o for p in parts for o in p.text_offset]
        logprobs = [x for p in parts for x in p.token_logprobs]
        tops = [t for p in parts for t in p.top_logprobs]
    else:
        answer = client.completions.create(**kwargs)  # type: ignore[call-overload]
        text = answer.choices[0].text
        lp = answer.choices[0].logprobs
        tokens, offsets, logprobs, tops = lp.tokens, lp.text_offset, lp.token_logprobs, lp.top_logprobs
    assert len(tokens) == 8 and "".join(tokens) == text
    assert offsets == [len("".join(tokens[:i])) for i in range(len(tokens))]
    assert all(x <= 0 for x in logprobs)
    assert all(1 <= len(t) <= 3 and max(t.values()) <= 0 for t in tops)


def test_logit_bias_bans_and_forces_tokens(client: openai.OpenAI, server: RunningServer) -> None:
    prompt = "The capital of France is"
    free = client.completions.create(model=MODEL, prompt=prompt, max_tokens=1, temperature=0,
                                     logprobs=2)
    first = free.choices[0].logprobs.top_logprobs[0]  # type: ignore[union-attr]
    token_ids = httpx.post(server.base + "/tokenize", json={
        "content": free.choices[0].text}, timeout=30).json()["tokens"]
    banned = client.completions.create(model=MODEL, prompt=prompt, max_tokens=1, temperature=0,
                                       logit_bias={str(token_ids[0]): -100})
    assert banned.choices[0].text != free.choices[0].text
    forced = client.completions.create(model=MODEL, prompt=prompt, max_tokens=3, temperature=0,
                                       logit_bias={str(token_ids[0]): 100})
    assert forced.choices[0].text.startswith(free.choices[0].text * 2)  # drawn every time
    assert first  # the free draw had alternatives to ban it in favour of


def test_bad_logprob_requests_are_refused(client: openai.OpenAI) -> None:
    for extra, param in [({"top_logprobs": 3}, "top_logprobs"),
                         ({"logit_bias": {"banana": 3}}, "logit_bias"),
                         ({"logit_bias": {"1": 500}}, "logit_bias"),
                         ({"logprobs": True, "top_logprobs": 21}, "top_logprobs")]:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=2,
                                           **extra)  # type: ignore[arg-type]
        assert caught.value.body["param"].startswith(param), caught.value.body  # type: ignore[index]
