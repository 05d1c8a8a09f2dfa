"""The checks every protocol's prompt goes through, written once: its size before any rendering
or tokenizing (so one request cannot keep a worker busy for long), token ids in the vocabulary,
room left for the answer in the context, stop strings, and the BOS a fill-in-the-middle prompt
opens with. Each failure a 400 naming the field (`context_length_exceeded` where it is the size).
"""

from __future__ import annotations

from gateway.errors import ContextLengthExceeded, InvalidRequest
from gateway.frontend.tokenizer import Vocabulary

# no token covers more characters than this in the vocabularies we serve (so more text than
# n_ctx times it cannot fit)
MAX_CHARS_PER_TOKEN = 64


def text_fits(n_ctx: int, chars: int, param: str) -> None:
    """A 400 when `chars` characters cannot fit in `n_ctx` tokens whatever they are."""
    if chars > n_ctx * MAX_CHARS_PER_TOKEN:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {n_ctx} tokens, and your {param} is "
            f"{chars} characters: more than {n_ctx} tokens can hold. Please reduce the length.",
            param=param)


def token_ids(tokens: list[int], vocab: Vocabulary, param: str, indexed: bool = False) -> None:
    """A 400 for the first id outside the vocabulary (`param[i]` named when `indexed`)."""
    for i, token in enumerate(tokens):
        if not 0 <= token < vocab.n_vocab:
            raise InvalidRequest(f"Token id {token} is out of the vocabulary",
                                 param=f"{param}[{i}]" if indexed else param)


def room_after(n_ctx: int, tokens: list[int], param: str, pool_held: int | None = None) -> int:
    """Tokens left for the answer after this prompt; a 400 naming `param` for an empty prompt or
    one the context cannot hold. `pool_held`: with one KV pool for all conversations, what they
    hold of it now (idle ones are moved out to make room, running ones are not)."""
    if not tokens:
        raise InvalidRequest("The prompt is empty", param=param)
    if len(tokens) >= n_ctx:
        pool = ("" if pool_held is None else f" (one KV pool its conversations share, {pool_held} "
                "tokens of it held now: idle conversations are moved out to make room)")
        raise ContextLengthExceeded(
            f"This model's maximum context length is {n_ctx} tokens{pool}. However, your "
            f"{param} resulted in {len(tokens)} tokens. Please reduce the length.", param=param)
    return n_ctx - len(tokens)


def stop_strings(stop: str | list[str] | None) -> list[str]:
    """The stop strings asked for, empty ones dropped."""
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else [s for s in stop if s]


def fim_bos(vocab: Vocabulary) -> list[int]:
    """The BOS a fill-in-the-middle prompt opens with, where the model adds one."""
    return [vocab.bos_token] if vocab.add_bos and vocab.bos_token >= 0 else []


def fim_markers(vocab: Vocabulary, model_id: str, param: str, what: str) -> tuple[int, int, int]:
    """The model's (prefix, suffix, middle) tokens; a 400 naming `param` when it has none."""
    if vocab.fim_tokens is None:
        raise InvalidRequest(
            f"Model `{model_id}` has no fill-in-the-middle tokens, so it cannot {what}; use a "
            "code model that has them (Qwen2.5-Coder, CodeGemma, StarCoder2, ...)", param=param)
    return vocab.fim_tokens
