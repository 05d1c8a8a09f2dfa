"""A thinking template's answers through the OpenAI SDK: the reasoning apart from the reply
(`message.reasoning_content`, streamed as `delta.reasoning_content`), or left in `content` with
`reasoning_format: "none"`. The tiny GGUF carries a DeepSeek-R1-style template that opens the
think block in the generation prompt, so all the random model writes is its thinking; the raw
tokens (logprobs) say what it wrote, in the same request."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import ollama
import openai
import pytest

from tests.support import RunningServer, model_block, running_server
from tests.tiny_model import write_tiny_gguf

R1_STYLE = (
    "{% for m in messages %}{% set content = m['content'] %}"
    "{% if m['role'] == 'assistant' %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}")
ASK = [{"role": "user", "content": "Think, then answer."}]
# ASCII only (byte tokens 0x80-0xFF never drawn): each token's bytes are whole characters
ASCII = {"logit_bias": {str(3 + b): -100 for b in range(0x80, 0x100)}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    path = write_tiny_gguf(tmp_path_factory.mktemp("think") / "think.gguf", template=R1_STYLE)
    with running_server(model_block("thinker", path, n_ctx=1024, parallel=2, threads=1),
                        tmp_path_factory.mktemp("think-server")) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)


def _raw(logprobs: list) -> str:  # type: ignore[type-arg]
    """The text of the drawn tokens (from their bytes: a token may be part of a character)."""
    return bytes(b for entry in logprobs for b in entry.bytes).decode("utf-8", "replace")


def test_the_thinking_is_apart_from_the_reply(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="thinker", messages=ASK, max_tokens=24,
                                            temperature=0, logprobs=True, extra_body=ASCII)
    message = answer.choices[0].message
    raw = _raw(answer.choices[0].logprobs.content)
    assert raw.strip() and "</think>" not in raw  # the random model never closes it
    assert message.content == ""
    assert message.reasoning_content == raw.strip("\n")  # type: ignore[attr-defined]


def test_reasoning_format_none_keeps_it_in_content(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="thinker", messages=ASK, max_tokens=24,
                                            temperature=0, logprobs=True,
                                            extra_body={**ASCII, "reasoning_format": "none"})
    message = answer.choices[0].message
    assert message.content == _raw(answer.choices[0].logprobs.content)
    assert getattr(message, "reasoning_content", None) is None


def test_streamed_thinking_arrives_as_reasoning_deltas(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="thinker", messages=ASK, max_tokens=24,
                                            temperature=0, logprobs=True, stream=True,
                                            extra_body=ASCII)
    reasoning, content, tokens = "", "", []
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        delta = choice.delta
        reasoning += getattr(delta, "reasoning_content", None) or ""
        content += delta.content or ""
        if choice.logprobs and choice.logprobs.content:
            tokens += choice.logprobs.content
    raw = _raw(tokens)
    assert content == "" and reasoning and raw.strip()
    assert reasoning == raw.strip("\n")  # what it wrote, bar the newlines around the block


def test_anthropic_gets_a_thinking_block(server: RunningServer) -> None:
    """The same split over /v1/messages: a `thinking` block first (and no text: the random model
    never closes its thinking), whole and streamed."""
    messages = anthropic.Anthropic(base_url=server.base, api_key="x", max_retries=0).messages
    whole = messages.create(model="thinker", max_tokens=24, messages=ASK,
                            extra_body={**ASCII, "temperature": 0})
    assert [b.type for b in whole.content] == ["thinking"] and whole.content[0].thinking
    with messages.stream(model="thinker", max_tokens=24, messages=ASK,
                         extra_body={**ASCII, "temperature": 0}) as stream:
        thinking = "".join(e.thinking for e in stream if e.type == "thinking")
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking"]
    assert final.content[0].thinking == thinking != ""


def test_ollama_gets_message_thinking(server: RunningServer) -> None:
    local = ollama.Client(host=server.base)
    options = {"temperature": 0}
    whole = local.chat(model="thinker", messages=ASK, options={**options, "num_predict": 24})
    assert whole.message.thinking and whole.message.content == ""
    chunks = list(local.chat(model="thinker", messages=ASK, stream=True,
                             options={**options, "num_predict": 24}))
    assert "".join(c.message.thinking or "" for c in chunks)
    assert "".join(c.message.content for c in chunks) == ""
