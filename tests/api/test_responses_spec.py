"""Every object `/v1/responses` returns, and every event it streams, validates against OpenAI's
published schemas (`Response`, `ResponseStreamEvent`), pinned in `openapi/responses_schemas.json`
(extracted from openai/openai-openapi's openapi.yaml; its `source` names the commit): the SDK's
own models are laxer. Text, tools, a cut-short answer and a continued conversation, streamed and
not, on the embedded default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.support import RunningServer

MODEL = "qwen2.5-coder-0.5b"
SCHEMAS = Path(__file__).parent / "openapi" / "responses_schemas.json"
URI = "urn:openai:responses-schemas"
WEATHER = {"type": "function", "name": "get_weather", "description": "Get the weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


def _plain(node: Any) -> Any:
    """OpenAPI's one 2019-09 keyword in these schemas (`$recursiveRef`, ignored by 2020-12) as the
    `$ref` it means; nothing else changes."""
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("$recursiveRef") == "#":
        return {"$ref": "#/components/schemas/CompoundFilter"}
    return {k: _plain(v) for k, v in node.items()}


@pytest.fixture(scope="module")
def errors_of() -> Any:
    registry = Registry().with_resource(URI, Resource.from_contents(
        _plain(json.loads(SCHEMAS.read_text())), default_specification=DRAFT202012))
    validators = {name: Draft202012Validator({"$ref": f"{URI}#/components/schemas/{name}"},
                                             registry=registry)
                  for name in ("Response", "ResponseStreamEvent")}

    def errors(instance: dict[str, Any], name: str) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validators[name].iter_errors(instance)]
    return errors


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


def _events(text: str) -> list[dict[str, Any]]:
    events = []
    for frame in text.strip().split("\n\n"):
        data = [line[6:] for line in frame.split("\n") if line.startswith("data: ")]
        if data:
            events.append(json.loads(data[0]))
    return events


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
    events = _events(streamed.text)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    for event in events:
        assert errors_of(event, "ResponseStreamEvent") == [], event["type"]
    assert errors_of(events[-1]["response"], "Response") == []
