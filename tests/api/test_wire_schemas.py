"""Raw responses and stream chunks checked against the official SDK's models, which are generated
from OpenAI's OpenAPI spec: every field the spec types must have that type (validated with
pydantic, not merely parsed leniently as the SDK's client does)."""

from __future__ import annotations

import json

import httpx
import pytest
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response
from pydantic import BaseModel

from tests.support import RunningServer

MODEL = "gemma-3-270m"
ASK = [{"role": "user", "content": "Hi"}]
TOOL = {"type": "function", "function": {"name": "ping", "parameters": {
    "type": "object", "properties": {"host": {"type": "string"}}, "required": ["host"]}}}


def validate(model: type[BaseModel], data: dict) -> None:  # type: ignore[type-arg]
    model.model_validate(data)  # raises on a missing required field or a wrongly typed one


def post(server: RunningServer, path: str, body: dict) -> httpx.Response:  # type: ignore[type-arg]
    r = httpx.post(server.v1 + path, json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r


def frames(r: httpx.Response) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line[6:]) for line in r.text.split("\n")
            if line.startswith("data: {")]


@pytest.mark.parametrize("extra", [{}, {"logprobs": True, "top_logprobs": 2},
                                   {"tools": [TOOL], "tool_choice": "required"}])
def test_chat_completions_and_chunks(server: RunningServer, extra: dict) -> None:  # type: ignore[type-arg]
    body = {"model": MODEL, "messages": ASK, "max_tokens": 40, **extra}
    whole = post(server, "/chat/completions", body).json()
    validate(ChatCompletion, whole)
    assert isinstance(whole["system_fingerprint"], str)
    chunks = frames(post(server, "/chat/completions", {
        **body, "stream": True, "stream_options": {"include_usage": True}}))
    for chunk in chunks:
        validate(ChatCompletionChunk, chunk)


def test_text_completions_and_chunks(server: RunningServer) -> None:
    body = {"model": MODEL, "prompt": "Hello", "max_tokens": 4, "logprobs": 2}
    validate(Completion, post(server, "/completions", body).json())
    chunks = frames(post(server, "/completions", {**body, "stream": True}))
    for chunk in chunks:
        # OpenAI's own legacy stream sends `finish_reason: null` until the last chunk, which its
        # spec does not allow: that one field is checked apart
        reasons = [c["finish_reason"] for c in chunk["choices"]]
        assert all(r in (None, "stop", "length") for r in reasons)
        for choice in chunk["choices"]:
            choice["finish_reason"] = choice["finish_reason"] or "stop"
        validate(Completion, chunk)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_responses_and_their_events(server: RunningServer) -> None:
    body = {"model": MODEL, "input": "Hi", "max_output_tokens": 6}
    validate(Response, post(server, "/responses", body).json())
    events = frames(post(server, "/responses", {**body, "stream": True}))
    for event in events:
        if "response" in event:
            validate(Response, event["response"])


def test_embeddings(gemma_path: object, tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.support import model_block, running_server
    config = model_block(MODEL, gemma_path, n_ctx=256, parallel=1, threads=2,  # type: ignore[arg-type]
                         chat_template="gemma", embeddings=True)
    with running_server(config, tmp_path_factory.mktemp("schemas")) as server:
        body = {"model": MODEL, "input": ["a", "b"], "encoding_format": "float"}
        validate(CreateEmbeddingResponse, post(server, "/embeddings", body).json())
