"""The asyncio face of an engine: submit a request, iterate its events, cancel on exit.

Used by the serving layer from the event loop, with an engine whose sink is called on that loop
(an engine process's events arrive on it, read by its reader task). Leaving the iteration early
(client gone) cancels the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from gateway.engine.types import EngineEvent, Embedded, Failed, Finished, GenerationRequest, Sink


class EngineLike(Protocol):
    def submit(self, request: GenerationRequest, sink: Sink) -> None: ...
    def cancel(self, request_id: str) -> None: ...


async def generate(engine: EngineLike, request: GenerationRequest) -> AsyncIterator[EngineEvent]:
    events: asyncio.Queue[EngineEvent] = asyncio.Queue()
    engine.submit(request, events.put_nowait)
    done = False
    try:
        while True:
            event = await events.get()
            if isinstance(event, (Finished, Failed, Embedded)):
                done = True
            yield event
            if done:
                return
    finally:
        if not done:
            engine.cancel(request.request_id)
