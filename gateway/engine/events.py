"""What an engine says back about a request: its events (text, queue position, the end, a failure).

The frontend reads these back for each `GenerationRequest` it sends. msgspec Structs, so they
cross a process boundary as msgpack unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import msgspec


class FinishReason(str, enum.Enum):
    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"


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
    reasoning_tokens: int = 0  # of completion_tokens, drawn inside a thinking block


class FailureKind(str, enum.Enum):
    """Why the engine failed a request, in its own words (`gateway.errors` says what each is in
    HTTP); what the supervisor decides (an engine died, a model failed) is not the engine's."""

    QUEUE_FULL = "queue_full"  # too many new conversations wait: try later
    QUEUE_TIMEOUT = "queue_timeout"  # it waited longer than queue_timeout_s
    SHUTTING_DOWN = "shutting_down"  # the engine (or the server) is stopping
    DECODE_FAILED = "decode_failed"  # llama_decode failed for its batch
    GRAMMAR_STUCK = "grammar_stuck"  # the response format allows no next token
    INTERNAL = "internal"  # a bug: the engine survived it, the request did not


class Failed(msgspec.Struct, frozen=True, tag=True):
    message: str
    kind: FailureKind = FailureKind.INTERNAL
    retry_after: int | None = None  # seconds, when trying again later can help


class Queued(msgspec.Struct, frozen=True, tag=True):
    """Where the request stands: `position` >= 1 while it waits for a slot, 0 once it runs.

    The first event of every accepted request is a `Queued`."""

    position: int


EngineEvent = TextDelta | Finished | Failed | Queued | Embedded


def is_last(event: EngineEvent) -> bool:
    """Whether nothing follows this event for its request: the one rule for "finished"."""
    return isinstance(event, (Finished, Failed, Embedded))

Sink = Callable[[EngineEvent], None]  # where a request's events go; may be called from any thread
