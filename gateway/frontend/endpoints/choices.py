"""`n` > 1: several answers to one prompt, sharing its prefill.

The first answer starts alone; once its prompt is computed (its first text, or its end), the
others start as unnamed conversations of the same client, so the engine gives each a copy of the
first's KV (its shared-prefix copy) instead of computing the prompt again, each drawing with its
own seed. Their answers are then put together as one response's choices."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import msgspec

from gateway.engine.events import EngineEvent, Finished, TextDelta, is_last
from gateway.engine.requests import GenerationRequest
from gateway.frontend.event_stream import replayed

T = TypeVar("T")


async def after_prefill(events: AsyncIterator[EngineEvent]) -> AsyncIterator[EngineEvent]:
    """Wait until the request's prompt is computed; the events, none lost, from the start."""
    seen: list[EngineEvent] = []
    async for event in events:
        seen.append(event)
        if isinstance(event, TextDelta) or is_last(event):
            break

    return replayed(seen, events)


def sibling(request: GenerationRequest, index: int) -> GenerationRequest:
    """Choice `index` of `request`: its own id and seed, and no conversation name (a named
    conversation runs one turn at a time; this one copies the first's KV instead)."""
    seed = request.sampling.seed
    sampling = msgspec.structs.replace(
        request.sampling, seed=None if seed is None else (seed + index) % (1 << 63))
    return msgspec.structs.replace(request, request_id=uuid.uuid4().hex, session_key=None,
                                   sampling=sampling)


async def noting_ends(events: AsyncIterator[EngineEvent], ended: list[Finished]
                      ) -> AsyncIterator[EngineEvent]:
    """The events as they are, each `Finished` also noted in `ended` (for the usage chunk)."""
    async for event in events:
        if isinstance(event, Finished):
            ended.append(event)
        yield event


async def with_usage(items: AsyncIterator[T], last: Callable[[], T | None]) -> AsyncIterator[T]:
    """The items, then `last()` when it gives one (made once the others are all out)."""
    async for item in items:
        yield item
    final = last()
    if final is not None:
        yield final
