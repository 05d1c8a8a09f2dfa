"""One access-log line per engine request, when it ends: its id, model, class (`ongoing` turn or
`new` conversation), how it ended, its tokens (prompt, cached, completion), how long it queued,
its time to first text and its duration. Never the API key, the client or the prompt text.
Logged on `gateway.access` at INFO (the server turns it on whatever its log level)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

from gateway.engine.events import Embedded, EngineEvent, Finished, TextDelta, is_last
from gateway.errors import ServiceFailure
from gateway.engine.requests import GenerationRequest
from gateway.fleet.metrics import Metrics

log = logging.getLogger("gateway.access")


def line(request: GenerationRequest, model: str, end: EngineEvent | ServiceFailure | None, ttft: float | None,
         duration: float, route: str = "") -> str:
    fields: dict[str, object] = {"id": request.request_id[:12], "model": model, "route": route}
    if isinstance(end, Finished):
        fields.update({"class": "ongoing" if end.ongoing else "new", "status": end.reason.value,
                       "prompt": end.prompt_tokens, "cached": end.cached_tokens,
                       "completion": end.completion_tokens,
                       "queue_wait": f"{end.queue_wait_s:.3f}"})
    elif isinstance(end, Embedded):
        fields.update({"status": "embedded", "prompt": end.prompt_tokens})
    elif isinstance(end, ServiceFailure):
        fields["status"] = end.code or "internal"
    else:
        fields["status"] = "client_gone"
    fields["ttft"] = f"{ttft:.3f}" if ttft is not None else "-"
    fields["duration"] = f"{duration:.3f}"
    return " ".join(f"{k}={v}" for k, v in fields.items())


async def logged(events: AsyncIterator[EngineEvent], request: GenerationRequest, model: str,
                 route: str, metrics: Metrics | None = None,
                 on_end: Callable[[], None] | None = None) -> AsyncIterator[EngineEvent]:
    """The events as they are; when the request ends, its line, its figures in `metrics`, and
    `on_end` called."""
    start = time.perf_counter()
    first: float | None = None
    last = start
    gaps: list[float] = []
    end: EngineEvent | ServiceFailure | None = None
    try:
        async for event in events:
            if isinstance(event, TextDelta) and event.text:
                now = time.perf_counter()
                if first is None:
                    first = now - start
                else:
                    gaps.append(now - last)
                last = now
            if is_last(event):
                end = event
            yield event
    except ServiceFailure as failure:
        end = failure
        raise
    finally:
        log.info("%s", line(request, model, end, first, time.perf_counter() - start, route))
        if metrics is not None:
            metrics.observe(model, route, end, first, gaps)
        if on_end is not None:
            on_end()
        await events.aclose()  # type: ignore[attr-defined]
