"""What the engine is asked to do: a `GenerationRequest`, built by the frontend (already tokenized
and checked; the engine never sees an OpenAI request), with its sampling parameters. msgspec
Structs, so they cross a process boundary as msgpack unchanged.
"""

from __future__ import annotations

import msgspec

from gateway.engine.hole_end import Hole
from gateway.engine.kv.session_key import SessionKey


class SamplingParams(msgspec.Struct, frozen=True):
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repeat_penalty: float = 1.0
    penalty_last_n: int = 64
    logit_bias: list[tuple[int, float]] = []  # (token, added to its logit); -100: never drawn


class ThinkingSpec(msgspec.Struct, frozen=True):
    """How the answer thinks (the chat template's format), so the engine can count its thinking
    and close the block itself when the budget is spent."""

    open: str  # the text that opens the thinking block
    close: str  # the text that ends it
    opened: bool = False  # the prompt opened the block: the answer starts inside it
    budget: int | None = None  # thinking tokens allowed; None: no limit
    closing: list[int] = []  # the tokens the engine writes when the budget is spent
    render_special: bool = False  # the format's markup is control tokens (gpt-oss): send their text


class GenerationRequest(msgspec.Struct, frozen=True):
    request_id: str
    prompt_tokens: list[int]
    max_tokens: int  # 0: compute the prompt's KV (cached for the next request) and end
    sampling: SamplingParams = SamplingParams()
    stop: list[str] = []
    ignore_eos: bool = False
    min_tokens: int = 0
    session_key: SessionKey | None = None  # `session_key.named(...)`: the conversation, in its client
    scope: str = ""  # the client (API key hash or address): unkeyed prefix reuse stays inside it
    grammar: str | None = None  # GBNF the output must follow (structured output), checked already
    # time limits (llama.cpp's t_max_prompt_ms / t_max_predict_ms, in seconds): no first token
    # this long after arrival: end with none (the prompt's KV computed so far stays, for the next
    # request); answering this long: end at the next newline
    max_prompt_s: float | None = None
    max_predict_s: float | None = None
    logprobs: int | None = None  # report each drawn token's logprob and this many alternatives
    # an embeddings request: one vector per input, no generation (prompt_tokens unused)
    embed_inputs: list[list[int]] | None = None
    # fill-in-the-middle: end the answer where the middle ends (not with ignore_eos, which asks
    # for max_tokens whatever comes)
    hole: Hole | None = None
    thinking: ThinkingSpec | None = None  # a thinking template's answer
    # work done ahead for a conversation (its next turn's prompt): it runs only when no request
    # waits and a slot is free, as a new conversation (never an ongoing turn)
    background: bool = False
    draft_max: int | None = None  # tokens it may have proposed ahead per step; None: the model's
