"""A streamed answer to a request with tools: text goes out as it comes where it cannot be a
call; a call (tagged, bare, fenced) is held and read whole at the end."""

from __future__ import annotations

import json

from gateway.protocol import openai as wire
from gateway.frontend.tools.formats import HERMES, LLAMA3, MISTRAL
from gateway.frontend.tools.answer_stream import ToolAnswerStream
from gateway.frontend.tools.plan import ToolPlan, plan

TOOL = wire.Tool("function", wire.FunctionDefinition(
    "get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}))
BARE = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


def native(fmt: str = HERMES) -> ToolPlan:
    made = plan([TOOL], "auto", None, fmt)
    assert made is not None and made.native == fmt
    return made


def feed(stream: ToolAnswerStream, text: str) -> list[str]:
    return [stream.push(c) for c in text]  # one character a token


def test_a_reply_streams_as_it_comes() -> None:
    stream = ToolAnswerStream(native())
    sent = feed(stream, "The weather is mild.")
    assert sent[0] == "T" and "".join(sent) == "The weather is mild."  # "T" cannot open a call
    assert sum(1 for s in sent if s) > 10
    assert stream.finish() == ("", [])


def test_a_bare_or_fenced_call_is_held_and_read_at_the_end() -> None:
    for answer in (BARE, f"```json\n{BARE}\n```", f"  \n{BARE}"):
        stream = ToolAnswerStream(native())
        assert not "".join(feed(stream, answer))
        rest, calls = stream.finish()
        assert rest == "" and [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"}]


def test_held_json_that_is_no_call_comes_whole_at_the_end() -> None:
    stream = ToolAnswerStream(native())
    assert not "".join(feed(stream, '{"city": "Paris"}'))
    assert stream.finish() == ('{"city": "Paris"}', [])


def test_a_reply_that_turns_into_a_tagged_call_is_held_from_the_tag() -> None:
    stream = ToolAnswerStream(native())
    sent = "".join(feed(stream, f"Let me check.\n<tool_call>\n{BARE}\n</tool_call>"))
    assert sent == "Let me check.\n"
    rest, calls = stream.finish()
    assert rest == "" and len(calls) == 1
    stream = ToolAnswerStream(native())
    sent = "".join(feed(stream, "a <tool is not a tag"))
    assert sent == "a <tool is not a tag" and stream.finish() == ("", [])


def test_the_generic_format_is_read_whole() -> None:
    generic = plan([TOOL], "required", None)
    assert generic is not None and generic.native is None
    stream = ToolAnswerStream(generic)
    answer = '{"tool_calls": [' + BARE + "]}"
    assert not "".join(feed(stream, answer))
    rest, calls = stream.finish()
    assert rest == "" and calls[0].function.name == "get_weather"
    cut = ToolAnswerStream(generic)
    feed(cut, '{"tool_calls": [{"name": "get_w')
    assert cut.finish() == ('{"tool_calls": [{"name": "get_w', [])  # cut short: the raw text


def test_each_format_is_held_from_its_own_call_marker() -> None:
    for fmt, answer, sent in (
            (MISTRAL, 'Checking.[TOOL_CALLS][' + BARE + ']', "Checking."),
            (LLAMA3, '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}', "")):
        stream = ToolAnswerStream(native(fmt))
        assert "".join(feed(stream, answer)) == sent, fmt
        rest, calls = stream.finish()
        assert rest == "" and [c.function.name for c in calls] == ["get_weather"], fmt
