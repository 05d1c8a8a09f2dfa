"""Internal request and event types that cross the engine boundary.

The engine never sees an OpenAI request: the serving layer builds a `GenerationRequest` (already
tokenized and checked) and reads `EngineEvent`s back. msgspec Structs, so they can cross a process
boundary as msgpack unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import msgspec


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


class GenerationRequest(msgspec.Struct, frozen=True):
    request_id: str
    prompt_tokens: list[int]
    max_tokens: int
    sampling: SamplingParams = SamplingParams()
    stop: list[str] = []
    ignore_eos: bool = False
    min_tokens: int = 0
    session_key: str | None = None  # the conversation, already scoped to its client
    scope: str = ""  # the client (API key hash or address): unkeyed prefix reuse stays inside it
    grammar: str | None = None  # GBNF the output must follow (structured output), checked already


class TextDelta(msgspec.Struct, frozen=True, tag=True):
    text: str


class Finished(msgspec.Struct, frozen=True, tag=True):
    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


class Failed(msgspec.Struct, frozen=True, tag=True):
    message: str
    status: int = 500
    code: str | None = None
    retry_after: int | None = None  # seconds, for 429


class Queued(msgspec.Struct, frozen=True, tag=True):
    """Where the request stands: `position` >= 1 while it waits for a slot, 0 once it runs.

    The first event of every accepted request is a `Queued`."""

    position: int


EngineEvent = TextDelta | Finished | Failed | Queued

Sink = Callable[[EngineEvent], None]  # where a request's events go; may be called from any thread
