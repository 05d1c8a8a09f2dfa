"""`/v1/embeddings` through the official SDK on the embedded Gemma with `embeddings = true`:
float and base64 agree, inputs batch, token arrays are accepted, usage is counted, vectors are
unit length and mean something; the model keeps chatting; a model without it is a 400."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from tests.support import RunningServer, model_block, running_server

MODEL = "gemma-3-270m"


@pytest.fixture(scope="module")
def embedder(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = model_block(MODEL, gemma_path, n_ctx=512, parallel=2, chat_template="gemma",
                         threads=2, embeddings=True)
    with running_server(config, tmp_path_factory.mktemp("embed")) as server:
        yield server


@pytest.fixture(scope="module")
def client(embedder: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=embedder.v1, api_key="x", max_retries=0)


def test_float_and_base64_agree_and_vectors_are_unit_length(client: openai.OpenAI,
                                                           embedder: RunningServer) -> None:
    texts = ["The cat sat on the mat.", "A feline rested on the rug.", "Revenue grew ten percent."]
    floats = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in floats.data])
    assert vectors.shape == (3, 640)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # the same meaning is closer
    raw = httpx.post(embedder.v1 + "/embeddings", timeout=60, json={
        "model": MODEL, "input": texts, "encoding_format": "base64"}).json()
    decoded = np.array([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4")
                        for d in raw["data"]])
    assert np.allclose(decoded, vectors, atol=1e-6)
    sdk_default = client.embeddings.create(model=MODEL, input=texts)  # the SDK asks for base64
    assert np.allclose(np.array([d.embedding for d in sdk_default.data]), vectors, atol=1e-6)


def test_token_arrays_usage_and_one_text(client: openai.OpenAI, embedder: RunningServer) -> None:
    text = "The cat sat on the mat."
    tokens = httpx.post(embedder.base + "/tokenize", json={"content": text, "add_special": True},
                        timeout=30).json()["tokens"]
    by_text = client.embeddings.create(model=MODEL, input=text, encoding_format="float")
    by_tokens = client.embeddings.create(model=MODEL, input=tokens, encoding_format="float")
    by_arrays = client.embeddings.create(model=MODEL, input=[tokens, tokens[:3]],
                                         encoding_format="float")
    assert np.allclose(by_text.data[0].embedding, by_tokens.data[0].embedding, atol=1e-5)
    assert np.allclose(by_arrays.data[0].embedding, by_text.data[0].embedding, atol=1e-5)
    assert by_text.usage.prompt_tokens == len(tokens) == by_text.usage.total_tokens
    assert by_arrays.usage.prompt_tokens == len(tokens) + 3
    batch = client.embeddings.create(model=MODEL, input=[f"text {i}" for i in range(20)],
                                     encoding_format="float")
    assert len(batch.data) == 20  # more inputs than one pass takes


def test_the_model_keeps_chatting(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model=MODEL, max_tokens=4,
                                            messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content is not None


def test_bad_embedding_requests(client: openai.OpenAI, server: RunningServer) -> None:
    plain = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)
    for target, kwargs, param in [
            (plain, {"input": "hi"}, "model"),  # the session server's model has no embeddings
            (client, {"input": []}, "input"),
            (client, {"input": ["ok", ""]}, "input[1]"),
            (client, {"input": [[1, 2], [10**9]]}, "input[1]"),
            (client, {"input": "hi", "dimensions": 64}, "dimensions"),
            (client, {"input": "word " * 2000}, "input")]:
        with pytest.raises(openai.BadRequestError) as caught:
            target.embeddings.create(model=MODEL, **kwargs)  # type: ignore[arg-type]
        assert caught.value.body["param"] == param, (kwargs, caught.value.body)  # type: ignore[index]


def test_ollama_embed_and_embeddings_agree_with_the_openai_route(embedder: RunningServer,
                                                                client: openai.OpenAI) -> None:
    """Through the `ollama` package: /api/embed's vectors are the model's, unit length (as
    Ollama's), cut to `dimensions` and made unit again; /api/embeddings gives it as it is."""
    import math

    import ollama

    local = ollama.Client(host=embedder.base)
    texts = ["the cat sat", "a dog ran"]
    openai_vectors = [d.embedding for d in client.embeddings.create(
        model=MODEL, input=texts, encoding_format="float").data]
    answer = local.embed(model=MODEL + ":latest", input=texts)
    assert len(answer.embeddings) == 2 and answer.prompt_eval_count > 0
    for ours, theirs in zip(answer.embeddings, openai_vectors):
        norm = math.sqrt(sum(v * v for v in theirs))
        assert math.isclose(sum(v * v for v in ours), 1.0, rel_tol=1e-4)
        assert all(math.isclose(a, b / norm, abs_tol=1e-5) for a, b in zip(ours, theirs))
    cut = local.embed(model=MODEL, input="the cat sat", dimensions=8).embeddings[0]
    assert len(cut) == 8 and math.isclose(sum(v * v for v in cut), 1.0, rel_tol=1e-4)
    legacy = local.embeddings(model=MODEL, prompt="the cat sat").embedding
    assert all(math.isclose(a, b, abs_tol=1e-5) for a, b in zip(legacy, openai_vectors[0]))
