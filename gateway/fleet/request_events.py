"""One request on one engine process, as the frontend reads it: its events up to the last; a
failure (the engine's `Failed`, or the supervisor's word: its engine died, the model was unloaded)
raised as a `ServiceFailure`, so the frontend handles every failure one way. Leaving the iteration
early (the client went away) cancels the request in its engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from gateway.engine.events import EngineEvent, Failed, is_last
from gateway.engine.requests import GenerationRequest
from gateway.errors import ServiceFailure
from gateway.fleet.engine_process import Sink


class Replica(Protocol):
    def submit(self, request: GenerationRequest, sink: Sink) -> None: ...
    def cancel(self, request_id: str) -> None: ...


async def request_events(replica: Replica, request: GenerationRequest
                         ) -> AsyncIterator[EngineEvent]:
    queue: asyncio.Queue[EngineEvent | ServiceFailure] = asyncio.Queue()
    replica.submit(request, queue.put_nowait)
    done = False
    try:
        while not done:
            item = await queue.get()
            if isinstance(item, ServiceFailure):
                done = True
                raise item
            if isinstance(item, Failed):
                done = True
                raise ServiceFailure.of(item)
            done = is_last(item)
            yield item
    finally:
        if not done:
            replica.cancel(request.request_id)
