"""A request for a model that sleeps or is still loading waits for it instead of getting a 503.
A stream starts at once and says so in SSE comments (`: loading 42%`, one a second), then goes
on as usual (or ends with an error frame if the model cannot wake); a plain response waits,
unless its client hangs up first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from gateway import wire
from gateway.errors import ClientGone, GatewayError
from gateway.serving.lifecycle import State
from gateway.serving.model_registry import ServedModel
from gateway.serving.responses import LoadingNotice

T = TypeVar("T")
E = TypeVar("E")
NOTICE_EVERY_S = 1.0


def must_wait(served: ServedModel) -> bool:
    """Whether a request waits for the model: it sleeps or is on its way up. Where it cannot
    serve and will not by waiting (failed, unloaded by the admin, restarting after it served),
    the 503 that says so is raised here, before any stream starts (and a 429 when `max_queue`
    requests already wait for it)."""
    if any(r.state is State.READY for r in served.replicas):
        return False
    if served.state is State.SLEEPING or served.settling:
        served.check_room_to_wait()  # a 429 before any stream starts
        return True
    served.require_ready()  # raises: there is no ready replica
    return False


async def ready(served: ServedModel, hung_up: Callable[[], Awaitable[None]]) -> None:
    """Return once the model can take the request (waking or waiting for its load), else raise
    why it cannot (a 503) or `ClientGone`."""
    if not must_wait(served):
        served.touch()
        return
    waiter = asyncio.ensure_future(served.wait_ready())
    watcher = asyncio.ensure_future(hung_up())
    try:
        await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not waiter.done():
        waiter.cancel()
        raise ClientGone("The client closed the connection while the model was loading")
    waiter.result()


def error_frame(exc: GatewayError) -> wire.ErrorResponse:
    return wire.error_response(exc.message, exc.type, exc.code)


async def loading_then(served: ServedModel, rest: Callable[[], Awaitable[AsyncIterator[T]]],
                       error_item: Callable[[GatewayError], E] = error_frame,  # type: ignore[assignment]
                       ) -> AsyncIterator[T | LoadingNotice | E]:
    """A stream for a model that must wake first: loading notices while it loads, then the
    items of `rest()` (or one error item: it failed, it was unloaded, no room on the GPUs)."""
    waiter = asyncio.ensure_future(served.wait_ready())
    try:
        yield LoadingNotice(round(served.load_progress * 100, 1))
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=NOTICE_EVERY_S)
            if not waiter.done():
                yield LoadingNotice(round(served.load_progress * 100, 1))
        waiter.result()
        items = await rest()
    except GatewayError as exc:
        yield error_item(exc)
        return
    finally:
        if not waiter.done():
            waiter.cancel()  # the client left while it loads: the load goes on, alone
    try:
        async for item in items:
            yield item
    finally:
        await items.aclose()  # type: ignore[attr-defined]
