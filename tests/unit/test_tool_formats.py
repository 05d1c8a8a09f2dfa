"""Native tool-call formats: found from the template, answers parsed in them, messages shaped for
the template."""

from __future__ import annotations

import json

from gateway.protocol import openai as wire
from gateway.frontend.tools.formats import HERMES, LLAMA3, MISTRAL, format_of, parse, template_message


def test_the_format_comes_from_the_template() -> None:
    assert format_of("{% if tools %}<tool_call>{% endif %}") == HERMES
    assert format_of("{% for t in tools %}[TOOL_CALLS]{% endfor %}") == MISTRAL
    assert format_of("{% if tools %}<|python_tag|>{% endif %}") == LLAMA3
    assert format_of("{{ messages }}") is None and format_of(None) is None
    assert format_of("<tool_call> with no list of them") is None


def test_answers_in_each_format_parse_into_calls() -> None:
    text, calls = parse(HERMES, 'Let me look.\n<tool_call>\n{"name": "get_weather", '
                                '"arguments": {"city": "Oslo"}}\n</tool_call>')
    assert text == "Let me look." and [c.function.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].function.arguments) == {"city": "Oslo"}
    text, calls = parse(MISTRAL, '[TOOL_CALLS][{"name": "a", "arguments": {}}, '
                                 '{"name": "b", "arguments": {"x": 1}}]')
    assert text is None and [c.function.name for c in calls] == ["a", "b"]
    text, calls = parse(LLAMA3, '<|python_tag|>{"name": "search", "parameters": {"q": "tabs"}}')
    assert text is None and json.loads(calls[0].function.arguments) == {"q": "tabs"}
    assert all(c.id.startswith("call_") for c in calls)


def test_text_that_is_no_call_stays_text() -> None:
    for fmt in (HERMES, MISTRAL, LLAMA3):
        assert parse(fmt, "Just a reply.") == ("Just a reply.", [])
    assert parse(HERMES, "<tool_call>not json</tool_call>") == ("<tool_call>not json</tool_call>", [])
    assert parse(LLAMA3, '{"no": "name"}') == ('{"no": "name"}', [])


def test_messages_keep_their_calls_for_the_template() -> None:
    call = wire.ToolCall(id="call_1", function=wire.ToolCallFunction("f", '{"a": 1}'))
    assistant = template_message(wire.ChatMessage(role="assistant", tool_calls=[call]), "")
    assert assistant["tool_calls"][0]["function"] == {"name": "f", "arguments": {"a": 1}}
    result = template_message(wire.ChatMessage(role="tool", tool_call_id="call_1", content="2"),
                              "2")
    assert result == {"role": "tool", "content": "2", "tool_call_id": "call_1"}


WEATHER = {"get_weather": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}
BARE = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


def test_hermes_calls_written_without_their_tags_are_calls_when_they_fit_a_tool() -> None:
    for answer in (BARE, f"\n{BARE}\n", f"```json\n{BARE}\n```", f"```\n{BARE}\n```",
                   f"[{BARE}]", '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',
                   '{"type": "function", "function": ' + BARE + "}"):
        text, calls = parse(HERMES, answer, WEATHER)
        assert text is None and len(calls) == 1, answer
        assert calls[0].function.name == "get_weather"
        assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    text, calls = parse(HERMES, f"{BARE}\n{BARE.replace('Paris', 'Oslo')}", WEATHER)
    assert text is None and [json.loads(c.function.arguments)["city"] for c in calls] == [
        "Paris", "Oslo"]


def test_json_that_is_no_call_of_a_declared_tool_stays_text() -> None:
    for answer in ('{"city": "Paris"}',  # no name: JSON the user asked for
                   '{"name": "get_time", "arguments": {"city": "Paris"}}',  # not declared
                   '{"name": "get_weather", "arguments": {"town": "Paris"}}',  # misses `city`
                   '{"name": "get_weather", "arguments": {"city": 7}}',  # wrong type
                   f"Here is how to call it:\n```json\n{BARE}\n```",  # prose around it
                   f"{BARE}\n{{\"temperature\": 18}}",  # a call and something else
                   '{"name": "get_weather", "arguments": {"city": "Par'):  # cut short
        assert parse(HERMES, answer, WEATHER) == (answer, []), answer


def test_tagged_calls_are_checked_against_the_tools_too() -> None:
    tagged = f"<tool_call>\n{BARE}\n</tool_call>"
    assert len(parse(HERMES, tagged, WEATHER)[1]) == 1
    assert len(parse(HERMES, f"<tool_call>\n{BARE}", WEATHER)[1]) == 1  # no closing tag
    wrong = '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    assert parse(HERMES, wrong, WEATHER) == (wrong, [])
    text, calls = parse(HERMES, f"Checking.\n{tagged}\n{wrong}", WEATHER)
    assert len(calls) == 1 and text == f"Checking.\n\n{wrong}"  # the call that is none stays


def test_a_schema_the_validator_cannot_read_lets_the_name_decide() -> None:
    odd = {"get_weather": {"type": "no such type"}}
    assert len(parse(HERMES, BARE, odd)[1]) == 1
