"""Where a refused body went wrong, found by walking it against the wire types."""

from __future__ import annotations

import json

import pytest

from gateway.api.body import decode_body
from gateway.errors import InvalidRequest
from gateway.protocol.openai import ChatCompletionRequest

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MSG}, "model"),
        ({"model": 5, "messages": MSG}, "model"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
         "messages[0].content[0].text"),
        ({"model": "m", "messages": [MSG[0], {"content": "x"}]}, "messages[1].role"),
        ({"model": "m", "messages": MSG, "stream_options": {"include_usage": "yes"}},
         "stream_options.include_usage"),
        ({"model": "m", "messages": MSG, "stop": ["a", 1]}, "stop[1]"),
        ({"model": "m", "messages": MSG, "max_completion_tokens": 0}, "max_completion_tokens"),
        ({"model": "m", "messages": MSG, "response_format": {"json_schema": {}}},
         "response_format.type"),
    ],
)
def test_the_param_is_where_the_body_failed(body: dict, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_body(json.dumps(body).encode(), ChatCompletionRequest)
    assert info.value.param == param
    assert "Expected" in info.value.message or "missing" in info.value.message


def test_a_bad_value_before_bad_json_is_still_a_400() -> None:
    body = b'{"model": "m", "messages": [], "max_tokens": 0, "temperature": Infinity}'
    with pytest.raises(InvalidRequest):
        decode_body(body, ChatCompletionRequest)
