"""One chat or text completion, end to end: find the model, build and check the engine request (off
the event loop: rendering and tokenizing a large prompt takes a while), pick a replica, wait for
the engine to accept it, then hand back either a stream of wire chunks or the whole response.

The web layer decodes the body, calls `complete` once and encodes what comes back; it knows nothing
of engines. A non-streamed request is cancelled in its engine when `hung_up` resolves first (the
client went away: litestar does not cancel a handler for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway import wire
from gateway.engine.types import Finished, TokenLogprob
from gateway.errors import ClientGone
from gateway.serving import choices, responses, waking
from gateway.serving.model_registry import ModelRegistry
from gateway.serving.request_builder import build_chat_request, build_completion_request, tool_plan

T = TypeVar("T")


@dataclass(frozen=True)
class Streamed:
    """The response is a stream of these items (chunks, queue notices, one error frame)."""

    items: AsyncIterator[responses.StreamItem]


async def complete(registry: ModelRegistry,
                   body: wire.ChatCompletionRequest | wire.CompletionRequest,
                   session_header: str | None, client: str,
                   hung_up: Callable[[], Awaitable[None]]
                   ) -> Streamed | wire.ChatCompletion | wire.Completion:
    served = registry.get(body.model)
    if body.stream and waking.must_wait(served):  # the stream starts now: `: loading` comments
        return Streamed(waking.loading_then(
            served, lambda: _items(complete(registry, body, session_header, client, hung_up))))
    await waking.ready(served, hung_up)
    chat = isinstance(body, wire.ChatCompletionRequest)
    if isinstance(body, wire.ChatCompletionRequest):
        request = await asyncio.to_thread(build_chat_request, served, body, session_header, client)
    else:
        request = await asyncio.to_thread(build_completion_request, served, body, session_header,
                                          client)
    identity = served.tokenizer.identity if served.tokenizer is not None else served.id
    ids = responses.ResponseIds(model=served.id, prefix="chatcmpl" if chat else "cmpl",
                                fingerprint=responses.fingerprint(identity))
    events = await responses.accepted(served.run(request, "chat" if chat else "completions"))
    plan = tool_plan(served, body) if isinstance(body, wire.ChatCompletionRequest) else None
    n = body.n or 1
    streams = [events]
    if n > 1:  # the others start from the first's computed prompt
        streams = [await choices.after_prefill(events)]
        for index in range(1, n):
            other = choices.sibling(request, index)
            streams.append(await responses.accepted(served.run(other, "chat" if chat else "completions")))
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        to_chunks = (functools.partial(responses.tool_chat_chunks, plan=plan) if plan is not None
                     else responses.chat_chunks if chat else responses.completion_chunks)
        if n == 1:
            return Streamed(to_chunks(ids, events, include_usage))
        ended: list[Finished] = []
        parts = [to_chunks(ids, choices.noting_ends(stream, ended), False, i)
                 for i, stream in enumerate(streams)]
        return Streamed(choices.with_usage(responses.merged_chunks(parts),
                                           lambda: responses.usage_chunk(ids, chat, ended)
                                           if include_usage else None))
    answers: list = []  # type: ignore[type-arg]  # of one kind: chat or text completions
    try:
        for stream in streams:
            logprobs: list[TokenLogprob] | None = [] if request.logprobs is not None else None
            text, finished = await unless_hung_up(hung_up, responses.collect(stream, logprobs))
            if plan is not None:
                answers.append(responses.tool_chat_completion(ids, text, finished, plan))
            elif chat:
                answers.append(responses.chat_completion(ids, text, finished, logprobs))
            else:
                answers.append(responses.text_completion(ids, text, finished, logprobs))
    finally:  # a client gone mid-way: the choices still running stop too
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
    return responses.merged(answers)


async def _items(result: Awaitable[Streamed | object]) -> AsyncIterator[responses.StreamItem]:
    streamed = await result
    assert isinstance(streamed, Streamed)
    return streamed.items


async def unless_hung_up(hung_up: Callable[[], Awaitable[None]], work: Awaitable[T]) -> T:
    """Await `work` unless `hung_up` resolves first: then it is cancelled (which cancels the
    generation in its engine) and `ClientGone` is raised."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(hung_up())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientGone("The client closed the connection before the response was ready")
