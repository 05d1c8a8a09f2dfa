"""Internal request and event types that cross the engine boundary.

The engine never sees an OpenAI request: the serving layer builds a `GenerationRequest` (already
tokenized and checked) and reads `EngineEvent`s back. msgspec Structs, so they can cross a process
boundary as msgpack unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import msgspec

from gateway.engine.hole_end import Hole
from gateway.engine.session_key import SessionKey


class FinishReason(str, enum.Enum):
    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"


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


class TopLogprob(msgspec.Struct, frozen=True, array_like=True):
    piece: bytes  # the token's text (bytes: it may be part of a character)
    logprob: float


class TokenLogprob(msgspec.Struct, frozen=True, array_like=True):
    """A drawn token's log-probability under the model, and the most likely alternatives."""

    piece: bytes
    logprob: float
    top: list[TopLogprob] = []


class TextDelta(msgspec.Struct, frozen=True, tag=True):
    text: str
    logprobs: list[TokenLogprob] | None = None  # the tokens drawn since the last delta, when asked


class Embedded(msgspec.Struct, frozen=True, tag=True):
    """An embeddings request's answer (it ends the request)."""

    vectors: list[list[float]]
    prompt_tokens: int


class Finished(msgspec.Struct, frozen=True, tag=True):
    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    # STOP by a stop string: that string; by leaving its hole: that line (stripped); "": by an
    # end-of-generation token (or not STOP)
    stopping_word: str = ""
    ongoing: bool = False  # a turn of a conversation the engine knew (else a new one)
    queue_wait_s: float = 0.0  # from its arrival in the engine to its start


class FailureKind(str, enum.Enum):
    """Why a request failed, in the engine's words; the serving layer maps each to HTTP."""

    QUEUE_FULL = "queue_full"  # too many new conversations wait: try later
    QUEUE_TIMEOUT = "queue_timeout"  # it waited longer than queue_timeout_s
    SHUTTING_DOWN = "shutting_down"  # the engine (or the server) is stopping
    DECODE_FAILED = "decode_failed"  # llama_decode failed for its batch
    GRAMMAR_STUCK = "grammar_stuck"  # the response format allows no next token
    INTERNAL = "internal"  # a bug: the engine survived it, the request did not
    ENGINE_STOPPED = "engine_stopped"  # its engine process died; it is being restarted
    NOT_READY = "not_ready"  # the model is still loading
    MODEL_FAILED = "model_failed"  # the model cannot run (it failed to load, or kept dying)
    UNLOADED = "unloaded"  # the model was unloaded


class Failed(msgspec.Struct, frozen=True, tag=True):
    message: str
    kind: FailureKind = FailureKind.INTERNAL
    retry_after: int | None = None  # seconds, when trying again later can help


class Queued(msgspec.Struct, frozen=True, tag=True):
    """Where the request stands: `position` >= 1 while it waits for a slot, 0 once it runs.

    The first event of every accepted request is a `Queued`."""

    position: int


EngineEvent = TextDelta | Finished | Failed | Queued | Embedded

Sink = Callable[[EngineEvent], None]  # where a request's events go; may be called from any thread
