"""What a request asks of a thinking model, put to its chat template and to the engine.

`reasoning_effort` maps onto what the template offers: Qwen3-style templates take
`enable_thinking` ("none" turns it off), gpt-oss's take `reasoning_effort` (low, medium, high;
"minimal" and "none" are its "low"). Where a template has no way to turn thinking off, "none" is
a budget of 0: the engine closes the block at once. `chat_template_kwargs` (llama-server's and
vLLM's field) go to the template as they are, over the model's configured ones. The budget
(`reasoning_budget` tokens, else the model's `[models.reasoning] budget`) is counted by the
engine, which writes the format's closing markup when it is spent.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.config import ModelConfig
from gateway.engine.requests import ThinkingSpec
from gateway.errors import InvalidRequest
from gateway.frontend.prompt.chat_template import RESERVED
from gateway.frontend.reasoning import ThinkFormat, opens_thinking
from gateway.frontend.tokenizer import Vocabulary
from gateway.protocol.openai import ChatCompletionRequest

_GPT_OSS_EFFORT = {"none": "low", "minimal": "low"}


def effort_of(body: ChatCompletionRequest, config: ModelConfig) -> str | None:
    return body.reasoning_effort or config.reasoning.effort


def template_variables(source: str, body: ChatCompletionRequest, config: ModelConfig
                       ) -> dict[str, Any]:
    """The variables the chat template renders this request with."""
    variables = dict(config.chat_template_kwargs)
    effort = effort_of(body, config)
    if effort is not None:
        if "enable_thinking" in source:
            variables["enable_thinking"] = effort != "none"
        if "reasoning_effort" in source:
            variables["reasoning_effort"] = _GPT_OSS_EFFORT.get(effort, effort)
    asked = body.chat_template_kwargs or {}
    named = sorted(RESERVED & asked.keys())
    if named:
        raise InvalidRequest(f"`chat_template_kwargs` may not set `{named[0]}`",
                             param="chat_template_kwargs")
    return {**variables, **asked}


def budget_of(source: str, body: ChatCompletionRequest, config: ModelConfig) -> int | None:
    """Thinking tokens the answer may spend; None: no limit."""
    if body.reasoning_budget is not None:
        return None if body.reasoning_budget < 0 else body.reasoning_budget
    if effort_of(body, config) == "none" and "enable_thinking" not in source:
        return 0  # the template cannot turn it off: close the block at once
    return config.reasoning.budget


def thinking_spec(fmt: ThinkFormat, prompt_text: str, budget: int | None, vocab: Vocabulary,
                  grammar: bool) -> ThinkingSpec:
    """The engine's view of the answer's thinking. With a grammar, the engine cannot write the
    closing markup (the grammar would refuse it): no budget then."""
    closing = vocab.tokenize(fmt.closing, add_special=False, parse_special=True)
    if closing and vocab.token_bytes(closing[0], special=True) in (b" ", "\u2581".encode()):
        closing = closing[1:]  # a SentencePiece vocabulary's leading space: not the markup's
    return ThinkingSpec(open=fmt.open, close=fmt.close, opened=opens_thinking(fmt, prompt_text),
                        budget=None if grammar else budget, closing=closing,
                        render_special=fmt.special)


def wants_raw(body: ChatCompletionRequest, config: ModelConfig) -> bool:
    """Whether the client gets the thinking in the answer's text (`reasoning_format: "none"`,
    or the model's configured `format`) rather than apart."""
    if body.reasoning_format is not None:
        return body.reasoning_format == "none"
    return config.reasoning.format == "none"


def spelled_text(variables: dict[str, Any]) -> str:
    """The client's variables as text, to check for spelled special tokens."""
    return json.dumps(variables, ensure_ascii=False, default=str)
