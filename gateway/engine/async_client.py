"""The asyncio face of an engine: submit a request, iterate its events, cancel on exit.

Used by the serving layer from the event loop. An engine process's events already arrive on the
loop (its reader task) and go straight into the request's queue; an engine running in a thread of
its own hands them over with `call_soon_threadsafe`. Leaving the iteration early (client gone)
cancels the request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Protocol

from gateway.engine.types import EngineEvent, Failed, Finished, GenerationRequest, Sink


class EngineLike(Protocol):
    def submit(self, request: GenerationRequest, sink: Sink) -> None: ...
    def cancel(self, request_id: str) -> None: ...


async def generate(engine: EngineLike, request: GenerationRequest) -> AsyncIterator[EngineEvent]:
    events: asyncio.Queue[EngineEvent] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    def sink(event: EngineEvent) -> None:
        if threading.get_ident() == loop_thread:
            events.put_nowait(event)
        else:
            loop.call_soon_threadsafe(events.put_nowait, event)

    engine.submit(request, sink)
    done = False
    try:
        while True:
            event = await events.get()
            if isinstance(event, (Finished, Failed)):
                done = True
            yield event
            if done:
                return
    finally:
        if not done:
            engine.cancel(request.request_id)
