"""A request's engine events, as every endpoint reads them: accepted before any byte is sent,
collected whole, or rendered as a stream by the one loop (`rendered`) that every protocol's
renderer plugs into: text as it comes, queue positions as notices, the end, a failure as the
protocol's error frame (after which nothing follows).

Failures arrive as `GatewayError`s (the fleet raises them), never as events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from gateway.engine.events import EngineEvent, Finished, Queued, TextDelta, TokenLogprob
from gateway.errors import Failure, GatewayError, ServiceFailure

Item = TypeVar("Item")
Item_co = TypeVar("Item_co", covariant=True)


@dataclass(frozen=True)
class QueueNotice:
    """The request waits for a slot; the API layer shows it as an SSE comment."""

    position: int


@dataclass(frozen=True)
class LoadingNotice:
    """The model is waking (or loading) for this stream; the API layer shows it as an SSE
    comment, `: loading 42%`."""

    percent: float


def unfinished() -> ServiceFailure:
    return ServiceFailure(Failure.INTERNAL, "the engine ended the request without finishing it")


async def accepted(events: AsyncIterator[EngineEvent]) -> AsyncIterator[EngineEvent]:
    """Wait for the engine to accept the request (its first event) before any byte is sent:
    a refusal (queue full) raises here and becomes a plain HTTP error, not a stream."""
    first = await anext(events)
    return replayed([first], events)


async def replayed(seen: list[EngineEvent], events: AsyncIterator[EngineEvent]
                   ) -> AsyncIterator[EngineEvent]:
    """The events already read, then the rest; closing it cancels the request in the engine."""
    try:
        for event in seen:
            yield event
        async for event in events:
            yield event
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def collect(events: AsyncIterator[EngineEvent], logprobs: list[TokenLogprob] | None = None
                  ) -> tuple[str, Finished]:
    """The whole text and how it ended; each token's logprobs into `logprobs` when given."""
    parts: list[str] = []
    async for event in events:
        if isinstance(event, TextDelta):
            parts.append(event.text)
            if logprobs is not None and event.logprobs:
                logprobs.extend(event.logprobs)
        elif isinstance(event, Finished):
            return "".join(parts), event
    raise unfinished()


class Renderer(Protocol[Item_co]):
    """One protocol's stream items: what opens the stream, then for each kind of event."""

    def opening(self) -> Iterable[Item_co]: ...
    def text(self, delta: TextDelta) -> Iterable[Item_co]: ...
    def finished(self, finished: Finished) -> Iterable[Item_co]: ...
    def failed(self, error: GatewayError) -> Iterable[Item_co]: ...


async def rendered(events: AsyncIterator[EngineEvent], renderer: Renderer[Item],
                   notices: bool = True) -> AsyncIterator[Item | QueueNotice]:
    """The stream of one request: its renderer's opening items, its items for each text and for
    the end; queue positions as notices (when the protocol shows them); a failure as the
    renderer's error items, ending the stream."""
    for item in renderer.opening():
        yield item
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                for item in renderer.text(event):
                    yield item
            elif isinstance(event, Queued):
                if notices and event.position > 0:
                    yield QueueNotice(event.position)
            elif isinstance(event, Finished):
                for item in renderer.finished(event):
                    yield item
                return
        raise unfinished()
    except GatewayError as error:
        for item in renderer.failed(error):
            yield item
