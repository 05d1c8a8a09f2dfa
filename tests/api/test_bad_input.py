"""Inputs found by probing a live server that once answered 500 or never answered: each is a 400
in OpenAI's shape naming the `param`, and none leaves anything behind."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_errors import MODEL, MSG, assert_error_shape
from tests.support import RunningServer

CHAT = "/chat/completions"


def nothing_left_behind(server: RunningServer) -> None:
    health = httpx.get(server.base + "/health").json()
    model = health["models"][MODEL]
    assert (model["running"], model["waiting"]) == (0, 0), model
    assert health["gateway"]["in_flight"] == 0


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": 2**64}, "max_tokens"),
        ({"max_tokens": 10**30}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_completion_tokens": 2**64}, "max_completion_tokens"),
        ({"seed": 2**64}, "seed"),
        ({"seed": -(2**64)}, "seed"),
        ({"top_k": 2**40}, "top_k"),
        ({"min_tokens": 10**20}, "min_tokens"),
        ({"n": 10**6}, "n"),
    ],
)
def test_numbers_out_of_range_are_400s(server: RunningServer, fields: dict, param: str) -> None:
    r = httpx.post(server.v1 + CHAT, json={"model": MODEL, "messages": MSG, **fields}, timeout=10)
    assert_error_shape(r, 400, param=param)
    nothing_left_behind(server)


def test_a_float_beyond_double_range_is_400(server: RunningServer) -> None:
    body = b'{"model": "gemma-3-270m", "messages": [{"role": "user", "content": "hi"}], ' \
           b'"temperature": 1e999}'
    r = httpx.post(server.v1 + CHAT, content=body, timeout=10,
                   headers={"content-type": "application/json"})
    assert_error_shape(r, 400, param="temperature")


def test_the_largest_seed_works(server: RunningServer) -> None:
    r = httpx.post(server.v1 + CHAT, timeout=30,
                   json={"model": MODEL, "messages": MSG, "seed": 2**63 - 1, "max_tokens": 2})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "gemma-3-270m", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        b'{"model": "gemma-3-270m", "messages": [{"role": "user", "content": "hi"}], "\xff": 1}',
        b'{"model": "gemma-3-270m", "messages": [{"role": "user", "\xc3": "hi"}]}',
    ],
)
def test_invalid_utf8_is_400(server: RunningServer, body: bytes) -> None:
    r = httpx.post(server.v1 + CHAT, content=body, timeout=10,
                   headers={"content-type": "application/json"})
    error = assert_error_shape(r, 400)
    assert "UTF-8" in error["message"]
    nothing_left_behind(server)


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "gemma-3-270m", "messages": [{"role": "user", "content": "hi"}], "x": '
        + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"model": "gemma-3-270m", "messages": [{"role": "user", "content": "hi"}], '
        b'"response_format": {"type": "json_schema", "json_schema": {"schema": '
        + b'{"a": ' * 3000 + b"1" + b"}" * 3000 + b"}}}",
    ],
)
def test_deep_nesting_is_400(server: RunningServer, body: bytes) -> None:
    r = httpx.post(server.v1 + CHAT, content=body, timeout=10,
                   headers={"content-type": "application/json"})
    assert_error_shape(r, 400)
    nothing_left_behind(server)


def test_a_schema_deep_enough_to_exhaust_the_converter_is_400(server: RunningServer) -> None:
    schema: dict = {"type": "string"}
    for _ in range(400):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    r = httpx.post(server.v1 + CHAT, timeout=30, json={
        "model": MODEL, "messages": MSG, "max_tokens": 2,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert_error_shape(r, 400, param="response_format.json_schema.schema")
    nothing_left_behind(server)


def test_a_text_part_without_text_says_so(server: RunningServer) -> None:
    r = httpx.post(server.v1 + CHAT, timeout=10, json={
        "model": MODEL, "messages": [{"role": "user", "content": [{"type": "text"}]}]})
    error = assert_error_shape(r, 400, param="messages[0].content[0].text")
    assert "not supported" not in error["message"]
