"""`suffix` on /v1/completions: fill-in-the-middle for models with FIM tokens (what editor plugins
send), a clear 400 for models without them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gateway.engine.llama_backend import LlamaModel
from tests.support import RunningServer, model_block, running_server
from tests.tiny_model import write_tiny_gguf

TINY = "tiny-coder"
PREFIX, SUFFIX = "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("fim") / "tiny.gguf")


@pytest.fixture(scope="module")
def coder(tiny_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    config = model_block(TINY, tiny_path, n_ctx=1024, parallel=2, threads=1)
    with running_server(config, tmp_path_factory.mktemp("coder")) as server:
        yield openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)


def test_suffix_makes_a_prefix_suffix_middle_prompt(coder: openai.OpenAI, tiny_path: Path) -> None:
    vocab = LlamaModel(tiny_path, vocab_only=True)
    assert vocab.fim_tokens is not None
    pre, suf, mid = vocab.fim_tokens
    expected = [vocab.bos_token, pre, *vocab.tokenize(PREFIX, False, False), suf,
                *vocab.tokenize(SUFFIX, False, False), mid]
    filled = coder.completions.create(model=TINY, prompt=PREFIX, suffix=SUFFIX, max_tokens=6,
                                      temperature=0, extra_body={"ignore_eos": True})
    explicit = coder.completions.create(model=TINY, prompt=expected, max_tokens=6, temperature=0,
                                        extra_body={"ignore_eos": True})
    assert filled.usage is not None and filled.usage.prompt_tokens == len(expected)
    assert filled.choices[0].text == explicit.choices[0].text
    plain = coder.completions.create(model=TINY, prompt=PREFIX, max_tokens=6, temperature=0,
                                     extra_body={"ignore_eos": True})
    assert plain.usage is not None and plain.usage.prompt_tokens < len(expected)


def test_streamed_fill_in_ends_properly(coder: openai.OpenAI) -> None:
    chunks = list(coder.completions.create(model=TINY, prompt=PREFIX, suffix=SUFFIX, max_tokens=5,
                                           stream=True, extra_body={"ignore_eos": True}))
    assert chunks[-1].choices[0].finish_reason == "length"
    assert "".join(c.choices[0].text for c in chunks)


def test_suffix_on_a_model_without_fim_tokens_is_a_clear_400(server: RunningServer) -> None:
    client = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="gemma-3-270m", prompt=PREFIX, suffix=SUFFIX, max_tokens=2)
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "suffix"
    assert "fill-in-the-middle" in error["message"]
    # an empty suffix asks for nothing a plain completion doesn't do
    reply = client.completions.create(model="gemma-3-270m", prompt=PREFIX, suffix="", max_tokens=2)
    assert reply.choices[0].finish_reason in ("length", "stop")
