"""The one skeleton of every endpoint that runs a model: find it, wait until it can serve, then
answer (build the engine request off the event loop, start it, stream or collect), each
protocol supplying only its build and render.

A stream for a model that must wake first starts at once and says so in SSE comments
(`: loading 42%`, one a second), then goes on as usual, or ends with the protocol's error item if
the model cannot wake; a plain response waits. Cancellation is not handled here: the web layer
runs each call as a task it cancels when the client hangs up (which cancels the generation in its
engine), so no function below takes a `hung_up`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

from gateway.engine.events import EngineEvent
from gateway.engine.requests import GenerationRequest
from gateway.errors import GatewayError
from gateway.fleet.served_model import ServedModel
from gateway.frontend.event_stream import LoadingNotice, accepted

Item = TypeVar("Item")
Whole = TypeVar("Whole")
Built = TypeVar("Built")
P = ParamSpec("P")
NOTICE_EVERY_S = 1.0


@dataclass(frozen=True)
class Streamed(Generic[Item]):
    """The response is a stream of these items (the web layer frames them)."""

    items: AsyncIterator[Item]


async def serve(served: ServedModel, stream: bool,
                answer: Callable[[], Awaitable[Streamed[Any] | Whole]],
                error_item: Callable[[GatewayError], object]
                ) -> Streamed[Any] | Whole:
    """`answer()` once `served` can serve; a stream that must wait for it starts now instead,
    with loading notices. Where it cannot serve and will not by waiting, the failure is raised
    before any stream starts (a 503, or a 429 when too many already wait)."""
    if stream and served.must_wait:
        return Streamed(_loading_then(served, answer, error_item))
    await served.ensure_ready()
    return await answer()


async def built(build: Callable[P, Built], *args: P.args, **kwargs: P.kwargs) -> Built:
    """`build(...)` off the event loop: rendering and tokenizing a large prompt takes a while."""
    return await asyncio.to_thread(build, *args, **kwargs)


async def started(served: ServedModel, request: GenerationRequest, route: str
                  ) -> AsyncIterator[EngineEvent]:
    """The request running on `served`, once its engine accepted it (a refusal raises here)."""
    return await accepted(served.run(request, route))


async def _loading_then(served: ServedModel, answer: Callable[[], Awaitable[Streamed[Any] | Whole]],
                        error_item: Callable[[GatewayError], object]
                        ) -> AsyncIterator[object]:
    waiter = asyncio.ensure_future(served.ensure_ready())
    try:
        yield LoadingNotice(round(served.load_progress * 100, 1))
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=NOTICE_EVERY_S)
            if not waiter.done():
                yield LoadingNotice(round(served.load_progress * 100, 1))
        waiter.result()
        streamed = await answer()
    except GatewayError as exc:
        yield error_item(exc)
        return
    finally:
        if not waiter.done():
            waiter.cancel()  # the client left while it loads: the load goes on, alone
    assert isinstance(streamed, Streamed)
    items = streamed.items
    try:
        async for item in items:
            yield item
    finally:
        await items.aclose()  # type: ignore[attr-defined]
