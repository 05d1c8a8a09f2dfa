"""Every object `/v1/responses` returns, and every event it streams, validates against OpenAI's
published schemas (`Response`, `ResponseStreamEvent`), pinned in `openapi/responses_schemas.json`
(extracted from openai/openai-openapi's openapi.yaml; its `source` names the commit): the SDK's
own models are laxer. Text, tools, a cut-short answer and a continued conversation, streamed and
not, on the embedded default."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.responses_schema import events_of, schema_errors
from tests.support import RunningServer

MODEL = "qwen2.5-coder-0.5b"
WEATHER = {"type": "function", "name": "get_weather", "description": "Get the weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}
@pytest.fixture(scope="module")
def errors_of() -> Any:
    return schema_errors()


def test_the_check_itself_refuses_what_the_spec_refuses(errors_of: Any) -> None:
    good = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
            "error": None, "incomplete_details": None, "instructions": None, "model": "m",
            "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": "hi", "annotations": [],
                                     "logprobs": []}]}],
            "parallel_tool_calls": True, "metadata": {}, "tool_choice": "auto", "tools": [],
            "temperature": None, "top_p": None}
    assert errors_of(good, "Response") == []
    assert errors_of({**good, "user": None}, "Response")  # a string or absent
    no_logprobs = json.loads(json.dumps(good))
    del no_logprobs["output"][0]["content"][0]["logprobs"]
    assert errors_of(no_logprobs, "Response")


@pytest.mark.parametrize("extra", [
    {"input": "Say hello in French."},
    {"input": "Count from 1 to 20.", "max_output_tokens": 4},
    {"input": "What is the weather in Paris?", "tools": [WEATHER], "tool_choice": "required"},
    {"input": [{"role": "user", "content": "Say hi."}], "instructions": "Be brief.",
     "metadata": {"who": "test"}, "user": "someone"},
], ids=["text", "cut-short", "tools", "instructions"])
def test_every_object_and_event_is_the_spec_s(default_server: RunningServer, errors_of: Any,
                                             extra: dict[str, Any]) -> None:
    url = default_server.v1 + "/responses"
    body = {"model": MODEL, "temperature": 0, **extra}
    whole = httpx.post(url, json=body, timeout=120)
    assert whole.status_code == 200, whole.text
    assert errors_of(whole.json(), "Response") == []
    follow = httpx.post(url, json={"model": MODEL, "temperature": 0, "input": "And in German?",
                                   "previous_response_id": whole.json()["id"]}, timeout=120)
    assert follow.status_code == 200 and errors_of(follow.json(), "Response") == []
    streamed = httpx.post(url, json={**body, "stream": True}, timeout=120)
    events = events_of(streamed.text)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    for event in events:
        assert errors_of(event, "ResponseStreamEvent") == [], event["type"]
    assert errors_of(events[-1]["response"], "Response") == []
