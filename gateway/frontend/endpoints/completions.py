"""`POST /v1/chat/completions` and `POST /v1/completions` on the endpoint skeleton: build the
engine request (`prompt.completion_request`), run it (`n` > 1: the other choices share the
first's prefill, `choices`), and render OpenAI's objects or chunks (`completion_chunks`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.engine.events import EngineEvent, Finished, TokenLogprob
from gateway.fleet.registry import ModelRegistry
from gateway.fleet.served_model import ServedModel
from gateway.frontend.endpoint import Streamed, built, serve, started
from gateway.frontend.endpoints import choices
from gateway.frontend.endpoints import completion_chunks as chunks
from gateway.frontend.error_frames import openai_error
from gateway.frontend.event_stream import LoadingNotice, collect, rendered
from gateway.frontend.tools.plan import ToolPlan
from gateway.frontend.prompt.completion_request import (
    build_chat_request,
    build_completion_request,
)
from gateway.frontend.prompt.thinking_switches import wants_raw
from gateway.frontend.next_turn import then_next_turn
from gateway.frontend.reasoning import Thinking, thinking_of
from gateway.protocol import openai

Body = openai.ChatCompletionRequest | openai.CompletionRequest
Answer = Streamed[chunks.StreamItem | LoadingNotice] | openai.ChatCompletion | openai.Completion


async def complete(registry: ModelRegistry, body: Body, session_header: str | None,
                   client: str) -> Answer:
    served = registry.get(body.model)
    return await serve(served, bool(body.stream),
                       lambda: _answer(served, body, session_header, client), openai_error)


async def _answer(served: ServedModel, body: Body, session_header: str | None, client: str
                  ) -> Streamed[chunks.StreamItem] | openai.ChatCompletion | openai.Completion:
    chat = isinstance(body, openai.ChatCompletionRequest)
    route = "chat" if chat else "completions"
    thinking: Thinking | None = None
    if isinstance(body, openai.ChatCompletionRequest):
        request, plan = await built(build_chat_request, served, body, session_header, client)
        thinking = thinking_of(request, wants_raw(body, served.config))
    else:
        request = await built(build_completion_request, served, body, session_header, client)
        plan = None
    identity = served.tokenizer.identity if served.tokenizer is not None else served.id
    ids = chunks.ResponseIds(model=served.id, prefix="chatcmpl" if chat else "cmpl",
                             fingerprint=chunks.fingerprint(identity))
    events = await started(served, request, route)
    if isinstance(body, openai.ChatCompletionRequest):
        events = then_next_turn(events, served, body, request, thinking, plan)
    streams: list[AsyncIterator[EngineEvent]] = [events]
    if (body.n or 1) > 1:  # the others start from the first's computed prompt
        streams = [await choices.after_prefill(events)]
        for index in range(1, body.n or 1):
            streams.append(await started(served, choices.sibling(request, index), route))
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        if len(streams) == 1:
            return Streamed(_stream(ids, chat, plan, thinking, events, include_usage))
        ended: list[Finished] = []
        parts = [_stream(ids, chat, plan, thinking, choices.noting_ends(stream, ended), False, i)
                 for i, stream in enumerate(streams)]
        return Streamed(choices.with_usage(chunks.merged_chunks(parts),
                                           lambda: chunks.usage_chunk(ids, chat, ended)
                                           if include_usage else None))
    answers: list = []  # type: ignore[type-arg]  # of one kind: chat or text completions
    try:
        for stream in streams:
            logprobs: list[TokenLogprob] | None = [] if request.logprobs is not None else None
            text, finished = await collect(stream, logprobs)
            reasoning = None
            if thinking is not None:
                reasoning, text = thinking.split(text)
            if plan is not None:
                answers.append(chunks.tool_chat_completion(ids, text, finished, plan, reasoning))
            elif chat:
                answers.append(chunks.chat_completion(ids, text, finished, logprobs, reasoning))
            else:
                answers.append(chunks.text_completion(ids, text, finished, logprobs))
    finally:  # a client gone mid-way: the choices still running stop too
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
    return chunks.merged(answers)


def _stream(ids: chunks.ResponseIds, chat: bool, plan: ToolPlan | None, thinking: Thinking | None,
            events: AsyncIterator[EngineEvent], include_usage: bool, index: int = 0
            ) -> AsyncIterator[chunks.StreamItem]:
    """One choice's chunks (a chat answer opens with its role)."""
    renderer: chunks.ChatChunks | chunks.CompletionChunks
    if plan is not None:
        renderer = chunks.ToolChatChunks(ids, include_usage, index, thinking, plan=plan)
    elif chat:
        renderer = chunks.ChatChunks(ids, include_usage, index, thinking)
    else:
        renderer = chunks.CompletionChunks(ids, include_usage, index)
    return rendered(events, renderer)
