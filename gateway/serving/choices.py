"""`n` > 1: several answers to one prompt, sharing its prefill.

The first answer starts alone; once its prompt is computed (its first text, or its end), the
others start as unnamed conversations of the same client, so the engine gives each a copy of the
first's KV (its shared-prefix copy) instead of computing the prompt again, each drawing with its
own seed. Their answers are then put together as one response's choices."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import msgspec

from gateway.engine.types import EngineEvent, Failed, Finished, GenerationRequest, TextDelta


async def after_prefill(events: AsyncIterator[EngineEvent]) -> AsyncIterator[EngineEvent]:
    """Wait until the request's prompt is computed; the events, none lost, from the start."""
    seen: list[EngineEvent] = []
    async for event in events:
        seen.append(event)
        if isinstance(event, (TextDelta, Finished, Failed)):
            break

    async def replayed() -> AsyncIterator[EngineEvent]:
        try:
            for event in seen:
                yield event
            async for event in events:
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]  # cancels it in the engine

    return replayed()


def sibling(request: GenerationRequest, index: int) -> GenerationRequest:
    """Choice `index` of `request`: its own id and seed, and no conversation name (a named
    conversation runs one turn at a time; this one copies the first's KV instead)."""
    seed = request.sampling.seed
    sampling = msgspec.structs.replace(
        request.sampling, seed=None if seed is None else (seed + index) % (1 << 63))
    return msgspec.structs.replace(request, request_id=uuid.uuid4().hex, session_key=None,
                                   sampling=sampling)
