"""Tool calling through the official SDK on the real model: a required or named call always parses
(held to shape by a grammar, on any model), streamed and not; `auto` lets the model reply or call;
calls and results round-trip through the chat template."""

from __future__ import annotations

import json

import openai
import pytest

from tests.support import RunningServer

MODEL = "gemma-3-270m"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The time in a timezone",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}},
                   "required": ["zone"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)


@pytest.mark.parametrize("seed", range(6))
def test_a_required_call_always_parses(client: openai.OpenAI, seed: int) -> None:
    answer = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER, TIME], tool_choice="required",
        temperature=1.0, seed=seed, max_tokens=200)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls
    for call in choice.message.tool_calls:
        assert call.type == "function" and call.id.startswith("call_")
        arguments = json.loads(call.function.arguments)
        if call.function.name == "get_weather":
            assert set(arguments) == {"city", "unit"} and arguments["unit"] in ("c", "f")
        else:
            assert call.function.name == "get_time" and set(arguments) == {"zone"}


def test_a_named_function_is_the_one_called(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER, TIME], temperature=0.8, max_tokens=200,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False)
    calls = answer.choices[0].message.tool_calls
    assert calls and len(calls) == 1 and calls[0].function.name == "get_time"
    assert "zone" in json.loads(calls[0].function.arguments)


def test_a_streamed_call_is_reassembled_by_the_sdk(client: openai.OpenAI) -> None:
    with client.beta.chat.completions.stream(
            model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required",
            temperature=0.5, max_tokens=200) as stream:
        for _event in stream:
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls and choice.message.tool_calls[0].function.name == "get_weather"
    assert json.loads(choice.message.tool_calls[0].function.arguments)["city"]
    raw = list(client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required", temperature=0,
        max_tokens=200, stream=True))
    deltas = [d for c in raw if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas and all(d.index is not None for d in deltas)
    assert deltas[0].id and deltas[0].type == "function" and deltas[0].function.name


def test_auto_replies_or_calls_and_both_parse(client: openai.OpenAI) -> None:
    for seed in range(4):
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hello to me."}],
            tools=[WEATHER], tool_choice="auto", temperature=1.0, seed=seed, max_tokens=120)
        choice = answer.choices[0]
        if choice.finish_reason == "tool_calls":
            assert choice.message.tool_calls and choice.message.content is None
        else:
            assert choice.finish_reason == "stop" and isinstance(choice.message.content, str)
            assert not choice.message.tool_calls and not choice.message.content.startswith("{")


def test_calls_and_results_round_trip(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required", temperature=0,
        max_tokens=200)
    call = first.choices[0].message.tool_calls[0]
    history = [*ASK,
               {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
               {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21}'}]
    second = client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER], temperature=0, max_tokens=60)
    assert second.choices[0].finish_reason in ("stop", "tool_calls", "length")
    # the earlier call and its result are in the prompt: it grew by both
    bare = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER],
                                          temperature=0, max_tokens=1)
    assert second.usage.prompt_tokens > bare.usage.prompt_tokens + 10
    none = client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER],
                                          tool_choice="none", max_tokens=8)
    assert none.choices[0].message.tool_calls is None  # no tools offered: plain text


def test_bad_tool_requests_are_refused_naming_the_field(client: openai.OpenAI) -> None:
    cases = [
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
         "tool_choice.function.name"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [{"type": "retrieval", "function": {"name": "x"}}]}, "tools[0].type"),
        ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format"),
    ]
    for extra, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=4,
                                           **extra)  # type: ignore[arg-type]
        assert caught.value.body["param"] == param, (extra, caught.value.body)  # type: ignore[index]


def test_responses_carry_a_system_fingerprint(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=2)
    assert answer.system_fingerprint and answer.system_fingerprint.startswith("fp_")
    chunks = list(client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=2,
                                                 stream=True))
    assert {c.system_fingerprint for c in chunks} == {answer.system_fingerprint}
