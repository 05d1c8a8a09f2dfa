"""Errors: the OpenAI shape, the right status, the SDK's exception classes."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support import RunningServer

MODEL = "gemma-3-270m"
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="sk-anything", max_retries=0)


def assert_error_shape(response: httpx.Response, status: int, param: str | None = None,
                       code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert "Traceback" not in response.text
    return error


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI, server: RunningServer) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    assert info.value.code == "model_not_found"
    r = httpx.post(server.v1 + "/completions", json={"model": "nope", "prompt": "x"})
    assert_error_shape(r, 404, param="model", code="model_not_found")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL, "messages": MSG, "max_tokens": "ten"}, "max_tokens"),
        ({"model": MODEL, "messages": MSG, "temperature": 3}, "temperature"),
        ({"model": MODEL, "messages": MSG, "top_p": 1.5}, "top_p"),
        ({"model": MODEL, "messages": MSG, "n": 0}, "n"),
        ({"model": MODEL, "messages": MSG, "max_tokens": 0}, "max_tokens"),
        ({"model": MODEL, "messages": MSG, "max_completion_tokens": 0}, "max_completion_tokens"),
        ({"model": MODEL, "messages": MSG, "presence_penalty": 9}, "presence_penalty"),
        ({"model": MODEL, "messages": []}, "messages"),
        ({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
         "messages[0].content[0]"),
        ({"model": MODEL, "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"messages": MSG}, "model"),
    ],
)
def test_validation_errors_name_the_param(server: RunningServer, body: dict, param: str) -> None:
    r = httpx.post(server.v1 + "/chat/completions", json=body)
    error = assert_error_shape(r, 400, param=param)
    assert error["type"] == "invalid_request_error"


def test_sdk_maps_400_to_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=MSG, n=0)
    assert info.value.param == "n"


def test_unknown_fields_are_ignored(server: RunningServer) -> None:
    r = httpx.post(server.v1 + "/chat/completions", json={
        "model": MODEL, "messages": MSG, "max_tokens": 2, "brand_new_field": {"x": 1},
        "parallel_tool_calls": False, "metadata": {"a": "b"}})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["role"] == "assistant"


def test_bad_json_is_400(server: RunningServer) -> None:
    r = httpx.post(server.v1 + "/chat/completions", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert_error_shape(r, 400)
    r = httpx.post(server.v1 + "/chat/completions", content=b"",
                   headers={"content-type": "application/json"})
    assert_error_shape(r, 400)


def test_context_length_exceeded_before_streaming(client: openai.OpenAI, server: RunningServer) -> None:
    long = "word " * 3000  # far past the 1024-token context per conversation
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": long}],
                                       stream=True)
    assert info.value.code == "context_length_exceeded"
    r = httpx.post(server.v1 + "/completions", json={"model": MODEL, "prompt": long, "stream": True})
    assert_error_shape(r, 400, param="prompt", code="context_length_exceeded")


def test_unknown_route_is_404_in_openai_shape(server: RunningServer) -> None:
    assert_error_shape(httpx.get(server.base + "/v1/nothing-here"), 404)
    assert_error_shape(httpx.post(server.base + "/v2/chat"), 404)


def test_wrong_method_is_405_in_openai_shape(server: RunningServer) -> None:
    assert_error_shape(httpx.get(server.v1 + "/chat/completions"), 405)


def test_token_id_prompt_out_of_vocab(server: RunningServer) -> None:
    r = httpx.post(server.v1 + "/completions", json={"model": MODEL, "prompt": [2, 10**9]})
    assert_error_shape(r, 400, param="prompt")
