"""The Responses API through the official SDK on the real model: text and message input,
`instructions`, `max_output_tokens`, the typed stream events, function tools, and
`previous_response_id` continuing the conversation on its own KV cache."""

from __future__ import annotations

import json

import openai
import pytest

from tests.support import RunningServer

MODEL = "gemma-3-270m"
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)


def test_text_input_and_instructions(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Name a colour.",
                                       instructions="Answer in one word.", max_output_tokens=8)
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status in ("completed", "incomplete")
    assert response.output_text and response.output[0].type == "message"
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and 0 < usage.output_tokens <= 8
    cut = client.responses.create(model=MODEL, input="Tell me a long story.", max_output_tokens=3,
                                  extra_body={"ignore_eos": True})
    assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"  # type: ignore[union-attr]


def test_previous_response_id_continues_on_the_cached_conversation(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model=MODEL, input=[{"role": "user", "content": "My name is Ada. Remember it, please."}],
        max_output_tokens=16)
    second = client.responses.create(model=MODEL, previous_response_id=first.id,
                                     input="What is my name?", max_output_tokens=8)
    assert second.previous_response_id == first.id
    details = second.usage.input_tokens_details  # type: ignore[union-attr]
    assert second.usage.input_tokens > first.usage.input_tokens  # type: ignore[union-attr]
    assert details.cached_tokens >= first.usage.input_tokens - 1  # type: ignore[union-attr]
    third = client.responses.create(model=MODEL, previous_response_id=second.id, input="And again?",
                                    max_output_tokens=4)
    assert third.usage.input_tokens_details.cached_tokens >= second.usage.input_tokens - 1  # type: ignore[union-attr]
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODEL, previous_response_id="resp_nope", input="Hi")
    assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_the_stream_sends_typed_events_the_sdk_reads(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input="Count to five.", max_output_tokens=12,
                                          stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert "response.output_text.delta" in types and "response.output_text.done" in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert deltas == done.text == events[-1].response.output_text
    with client.responses.stream(model=MODEL, input="Say hi.", max_output_tokens=6) as stream:
        for _event in stream:
            pass
        final = stream.get_final_response()
    assert final.status in ("completed", "incomplete") and final.output_text


def test_function_tools_and_their_outputs(client: openai.OpenAI) -> None:
    called = client.responses.create(model=MODEL, input="What is the weather in Oslo?",
                                     tools=[WEATHER], tool_choice="required",  # type: ignore[list-item]
                                     max_output_tokens=120)
    calls = [o for o in called.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert "city" in json.loads(calls[0].arguments)
    answered = client.responses.create(
        model=MODEL, previous_response_id=called.id, tools=[WEATHER],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": calls[0].call_id,
                "output": '{"celsius": 3}'}], max_output_tokens=30)
    assert answered.status in ("completed", "incomplete") and answered.output
    assert answered.usage.input_tokens_details.cached_tokens > 0  # type: ignore[union-attr]
