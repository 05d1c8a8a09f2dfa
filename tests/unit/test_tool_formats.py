"""Native tool-call formats: found from the template, answers parsed in them, messages shaped for
the template."""

from __future__ import annotations

import json

from gateway import wire
from gateway.serving.tool_formats import HERMES, LLAMA3, MISTRAL, format_of, parse, template_message


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
