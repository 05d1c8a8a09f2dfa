"""The official openai SDK, sync and async, streamed and not, against the real server."""

from __future__ import annotations

import asyncio

import openai
import pytest

from tests.support import RunningServer

MODEL = "gemma-3-270m"
HELLO = [{"role": "user", "content": "Write one sentence about the sea."}]


@pytest.fixture
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="sk-anything", max_retries=0)


@pytest.fixture
def aclient(server: RunningServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.v1, api_key="sk-anything", max_retries=0)


def test_models_list_and_get(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list().data]
    assert ids == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_chat_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=12)
    choice = reply.choices[0]
    assert reply.object == "chat.completion"
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None and reply.usage.completion_tokens <= 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_alias_and_max_completion_tokens(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="default", messages=HELLO, max_completion_tokens=5, extra_body={"ignore_eos": True}
    )
    assert reply.model == MODEL
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    assert reply.choices[0].finish_reason == "length"


def test_content_as_list_of_text_parts_equals_string(client: openai.OpenAI) -> None:
    as_text = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello there, friend"}],
        max_tokens=8, temperature=0,
    )
    as_parts = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Hello there, "}, {"type": "text", "text": "friend"}]}],
        max_tokens=8, temperature=0,
    )
    assert as_text.usage and as_parts.usage
    assert as_parts.usage.prompt_tokens == as_text.usage.prompt_tokens
    assert as_parts.choices[0].message.content == as_text.choices[0].message.content


def test_stream_shape(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=10, stream=True,
            stream_options={"include_usage": True}, extra_body={"ignore_eos": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.id == chunks[0].id for c in chunks)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "length"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 10
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4, stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_text_completion_streamed_and_not(client: openai.OpenAI) -> None:
    whole = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8,
                                      temperature=0)
    assert whole.object == "text_completion" and whole.choices[0].text
    parts = list(client.completions.create(model=MODEL, prompt="The capital of France is",
                                           max_tokens=8, temperature=0, stream=True))
    streamed = "".join(p.choices[0].text for p in parts if p.choices)
    assert streamed == whole.choices[0].text
    assert parts[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_seed_gives_the_same_text(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str:
        reply = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=24,
                                          temperature=1.0, seed=seed)
        return reply.choices[0].text

    assert sample(1234) == sample(1234)
    assert len({sample(s) for s in (1, 2, 3)}) > 1  # the seed really drives the sampler


def test_stop_string_spanning_tokens_is_cut_and_never_sent(client: openai.OpenAI) -> None:
    prompt = "The capital of France is"
    deltas = [p.choices[0].text for p in client.completions.create(
        model=MODEL, prompt=prompt, max_tokens=30, temperature=0, stream=True,
        extra_body={"ignore_eos": True}) if p.choices and p.choices[0].text]
    full = "".join(deltas)
    # a stop string made of the end of one token and the start of the next
    k = next(i for i in range(2, len(deltas) - 1) if len(deltas[i]) >= 2 and len(deltas[i + 1]) >= 2)
    stop = deltas[k][-2:] + deltas[k + 1][:2]
    expected = full[: full.index(stop)]
    got = list(client.completions.create(model=MODEL, prompt=prompt, max_tokens=30, temperature=0,
                                         stop=[stop, "\u2603never"], stream=True,
                                         extra_body={"ignore_eos": True}))
    text = "".join(p.choices[0].text for p in got if p.choices)
    assert text == expected
    assert stop not in text
    assert got[-1].choices[0].finish_reason == "stop"
    whole = client.completions.create(model=MODEL, prompt=prompt, max_tokens=30, temperature=0,
                                      stop=stop, extra_body={"ignore_eos": True})
    assert whole.choices[0].text == expected and whole.choices[0].finish_reason == "stop"


def test_utf8_characters_split_across_tokens_stream_whole(client: openai.OpenAI) -> None:
    # Gemma spells the llama emoji as four byte tokens; a greedy run repeats it
    stream = client.completions.create(model=MODEL, prompt="🦙" * 12, max_tokens=30, temperature=0,
                                       stream=True, extra_body={"ignore_eos": True})
    deltas = [p.choices[0].text for p in stream if p.choices and p.choices[0].text]
    text = "".join(deltas)
    assert "🦙" in text
    assert "\ufffd" not in text
    assert all("\ufffd" not in d for d in deltas)


def test_penalties_are_accepted_and_change_output(client: openai.OpenAI) -> None:
    def run(**kw: float) -> str:
        reply = client.completions.create(model=MODEL, prompt="la la la la la la", max_tokens=20,
                                          temperature=0, extra_body={"ignore_eos": True}, **kw)
        return reply.choices[0].text

    plain = run()
    assert run(frequency_penalty=2.0) != plain or run(presence_penalty=2.0) != plain


def test_min_tokens_is_honoured(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=40,
                                           extra_body={"min_tokens": 25}, temperature=0)
    assert reply.usage is not None and reply.usage.completion_tokens >= 25


def test_top_p_and_temperature_zero_are_deterministic(client: openai.OpenAI) -> None:
    a = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=10, temperature=0)
    b = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=10, temperature=0,
                                       top_p=0.5)
    assert a.choices[0].message.content == b.choices[0].message.content


async def test_async_client_streams_concurrently(aclient: openai.AsyncOpenAI) -> None:
    async def one(i: int) -> tuple[str, str | None]:
        stream = await aclient.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Count to {i}"}], max_tokens=16,
            stream=True, extra_body={"ignore_eos": True},
        )
        text, reason = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                reason = chunk.choices[0].finish_reason or reason
        return text, reason

    results = await asyncio.gather(one(3), one(5))
    assert all(text and reason == "length" for text, reason in results)


async def test_concurrent_streams_interleave(aclient: openai.AsyncOpenAI) -> None:
    arrivals: list[int] = []

    async def one(i: int) -> None:
        stream = await aclient.completions.create(model=MODEL, prompt=f"Story {i}:", max_tokens=24,
                                                  stream=True, extra_body={"ignore_eos": True})
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].text:
                arrivals.append(i)

    await asyncio.gather(one(0), one(1), one(2))
    assert sorted(set(arrivals)) == [0, 1, 2]
    # tokens of the three streams arrive mixed, not one stream after another
    first_end = min(max(j for j, a in enumerate(arrivals) if a == i) for i in range(3))
    last_start = max(arrivals.index(i) for i in range(3))
    assert last_start < first_end


def test_second_turn_reports_cached_tokens(client: openai.OpenAI) -> None:
    history = [{"role": "user", "content": "Name a colour and say why you like it."}]
    first = client.chat.completions.create(model=MODEL, messages=history, max_tokens=16,
                                           prompt_cache_key="sdk-chat-1")
    assert first.usage is not None
    history += [{"role": "assistant", "content": first.choices[0].message.content or ""},
                {"role": "user", "content": "And another one?"}]
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=history, max_tokens=8, stream=True, prompt_cache_key="sdk-chat-1",
        stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens
    # the same through the X-Session-ID header, non-streamed
    again = client.chat.completions.create(model=MODEL, messages=history, max_tokens=4,
                                           extra_headers={"X-Session-ID": "header-chat"})
    again2 = client.chat.completions.create(model=MODEL, messages=history + [
        {"role": "assistant", "content": again.choices[0].message.content or ""},
        {"role": "user", "content": "Thanks."}], max_tokens=4,
        extra_headers={"X-Session-ID": "header-chat"})
    assert again2.usage is not None and again2.usage.prompt_tokens_details is not None
    assert again2.usage.prompt_tokens_details.cached_tokens >= again.usage.prompt_tokens


async def test_async_client_non_streamed(aclient: openai.AsyncOpenAI) -> None:
    reply = await aclient.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6)
    assert reply.choices[0].message.content is not None
