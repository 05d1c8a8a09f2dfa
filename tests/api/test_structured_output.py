"""`response_format`: JSON mode and JSON schemas, enforced by a grammar in the sampler."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

MODEL = "gemma-3-270m"
SCHEMA = {
    "type": "object",
    "properties": {
        "colour": {"type": "string", "enum": ["red", "green", "blue"]},
        "count": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 2},
    },
    "required": ["colour", "count", "tags"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "Pick a colour and a number."}]


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)


def test_json_schema_output_follows_the_schema(client: openai.OpenAI) -> None:
    for seed in (1, 2, 3):
        reply = client.chat.completions.create(
            model=MODEL, messages=ASK, max_tokens=120, seed=seed, temperature=1.0,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "pick", "schema": SCHEMA, "strict": True}})
        assert reply.choices[0].finish_reason == "stop", reply.choices[0].message.content
        value = json.loads(reply.choices[0].message.content or "")
        assert set(value) == {"colour", "count", "tags"}
        assert value["colour"] in ("red", "green", "blue") and isinstance(value["count"], int)
        assert len(value["tags"]) <= 2 and all(len(t) <= 8 for t in value["tags"])


def test_json_object_mode_streams_json(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Describe a cat in JSON."}],
        max_tokens=60, stream=True, response_format={"type": "json_object"}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    if chunks[-1].choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:  # cut by max_tokens (this small model likes to repeat): still an object, so far
        assert text.lstrip().startswith("{") and is_json_prefix(text), text


def is_json_prefix(text: str) -> bool:
    """Whether some ending makes `text` valid JSON: close an open string (or escape), then try the
    few things that can be missing before the open containers are closed."""
    closers: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped = not escaped and ch == "\\"
            if ch == '"' and not escaped:
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not closers or closers.pop() != ch:
                return False
    head = text + ("n" if escaped else "") + ('"' if in_string else "")
    tail = "".join(reversed(closers))
    for middle in ("", "null", ":null", "0", "e0", "ue", "e", "l", "ll", "rue", "alse", "lse", "se"):
        for candidate in (head + middle, head.rstrip().rstrip(",") + middle):
            try:
                json.loads(candidate + tail)
                return True
            except ValueError:
                pass
    return False


def test_the_json_prefix_check_can_fail() -> None:
    assert is_json_prefix('{"a": [1, 2') and is_json_prefix('{"name": "ca') and is_json_prefix("{")
    assert not is_json_prefix('{"a": 1}}') and not is_json_prefix('{"a" 1') and not is_json_prefix("{]")


def test_a_schema_s_strings_hold_no_raw_control_characters(client: openai.OpenAI,
                                                           server) -> None:  # type: ignore[no-untyped-def]
    """A raw newline inside a JSON string is not JSON: the grammar refuses it even when the model
    wants nothing else (llama-cpp-python's schema converter allowed it)."""
    newline = httpx.post(server.base + "/tokenize", json={"content": "\n"}).json()["tokens"]
    assert len(newline) == 1
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Write a poem."}], max_tokens=40,
        temperature=0, logit_bias={str(newline[0]): 30},
        response_format={"type": "json_schema", "json_schema": {"name": "poem", "schema": {
            "type": "object", "properties": {"poem": {"type": "string", "maxLength": 20}},
            "required": ["poem"]}}})
    text = reply.choices[0].message.content or ""
    assert reply.choices[0].finish_reason == "stop", text
    assert not any(ch < " " for ch in json.loads(text)["poem"]), text


def test_text_format_is_free_text(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8, temperature=0,
                                           response_format={"type": "text"})
    plain = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8, temperature=0)
    assert reply.choices[0].message.content == plain.choices[0].message.content


@pytest.mark.parametrize(("response_format", "extra", "param"), [
    ({"type": "yaml"}, {}, "response_format.type"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, {}, "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/missing"}}},
     {}, "response_format.json_schema.schema"),
    ({"type": "json_object"}, {"ignore_eos": True}, "ignore_eos"),
])
def test_bad_response_formats_are_400s_naming_the_param(
        client: openai.OpenAI, response_format: dict, extra: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=4,
                                       response_format=response_format,  # type: ignore[arg-type]
                                       extra_body=extra)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == param
    # and the model keeps serving
    assert client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=2).choices
