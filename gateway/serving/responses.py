"""Engine events back into OpenAI wire objects: whole responses and stream chunks.

Knows the OpenAI response shapes (through `gateway.api.schemas`, plain msgspec) but nothing of HTTP:
the API layer frames what this yields as server-sent events.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from gateway import __version__, wire
from gateway.engine.types import EngineEvent, Failed, Finished, Queued, TextDelta, TokenLogprob
from gateway.serving import tools
from gateway.serving.tool_stream import ToolAnswerStream
from gateway.serving.failures import EngineFailure, error_frame


async def accepted(events: AsyncIterator[EngineEvent]) -> AsyncIterator[EngineEvent]:
    """Wait for the engine to accept the request (its first event) before any byte is sent:
    a refusal (queue full) raises here and becomes a plain HTTP error, not a stream."""
    first = await anext(events)
    if isinstance(first, Failed):
        raise EngineFailure(first)
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


@dataclass(frozen=True)
class QueueNotice:
    """The request waits for a slot; the API layer shows it as an SSE comment."""

    position: int


@dataclass(frozen=True)
class LoadingNotice:
    """The model is waking (or loading) for this stream; the API layer shows it as an SSE
    comment, `: loading 42%`."""

    percent: float


@dataclass
class ResponseIds:
    model: str
    prefix: str
    fingerprint: str = ""  # system_fingerprint: changes with the model file and the gateway build
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        self.id = f"{self.prefix}-{uuid.uuid4().hex[:24]}"


def fingerprint(model_identity: str) -> str:
    """OpenAI's `system_fingerprint`: the backend configuration a response came from. Ours
    changes with the model file (its identity) and the gateway's version."""
    digest = hashlib.sha256(f"{model_identity}:{__version__}".encode()).hexdigest()
    return f"fp_{digest[:10]}"


def usage_of(finished: Finished) -> wire.Usage:
    return wire.Usage(
        prompt_tokens=finished.prompt_tokens,
        completion_tokens=finished.completion_tokens,
        total_tokens=finished.prompt_tokens + finished.completion_tokens,
        prompt_tokens_details=wire.PromptTokensDetails(cached_tokens=finished.cached_tokens),
    )


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
        elif isinstance(event, Failed):
            raise EngineFailure(event)
    raise EngineFailure(Failed("the engine ended the request without finishing it"))


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="replace")


def chat_logprobs(entries: list[TokenLogprob]) -> wire.ChoiceLogprobs:
    return wire.ChoiceLogprobs(content=[
        wire.ChatTokenLogprob(
            token=_text(e.piece), logprob=e.logprob, bytes=list(e.piece),
            top_logprobs=[wire.TopLogprob(_text(t.piece), t.logprob, list(t.piece)) for t in e.top])
        for e in entries])


def completion_logprobs(entries: list[TokenLogprob], offset: int) -> wire.CompletionLogprobs:
    """OpenAI's legacy shape; `offset`: where the first token's text starts in the answer."""
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(_text(e.piece))
    return wire.CompletionLogprobs(
        tokens=[_text(e.piece) for e in entries], token_logprobs=[e.logprob for e in entries],
        top_logprobs=[{_text(t.piece): t.logprob for t in e.top} for e in entries],
        text_offset=offsets)


def chat_completion(ids: ResponseIds, text: str, finished: Finished,
                    logprobs: list[TokenLogprob] | None = None) -> wire.ChatCompletion:
    return wire.ChatCompletion(
        id=ids.id,
        created=ids.created,
        model=ids.model,
        system_fingerprint=ids.fingerprint,
        choices=[
            wire.ChatChoice(
                index=0,
                message=wire.AssistantMessage(content=text),
                finish_reason=finished.reason.value,
                logprobs=chat_logprobs(logprobs) if logprobs is not None else None,
            )
        ],
        usage=usage_of(finished),
    )


def tool_chat_completion(ids: ResponseIds, text: str, finished: Finished,
                         plan: tools.ToolPlan) -> wire.ChatCompletion:
    """An answer to a request with tools: its calls (`finish_reason` "tool_calls"), or its reply;
    the raw text when it was cut short before it parsed."""
    parsed = plan.read(text)
    if parsed is None:
        message, reason = wire.AssistantMessage(content=text), finished.reason.value
    elif parsed.calls:
        message, reason = wire.AssistantMessage(content=None, tool_calls=parsed.calls), "tool_calls"
    else:
        message, reason = wire.AssistantMessage(content=parsed.content), finished.reason.value
    return wire.ChatCompletion(
        id=ids.id, created=ids.created, model=ids.model, system_fingerprint=ids.fingerprint,
        choices=[wire.ChatChoice(index=0, message=message, finish_reason=reason)],
        usage=usage_of(finished))


def text_completion(ids: ResponseIds, text: str, finished: Finished,
                    logprobs: list[TokenLogprob] | None = None) -> wire.Completion:
    return wire.Completion(
        id=ids.id,
        created=ids.created,
        model=ids.model,
        system_fingerprint=ids.fingerprint,
        choices=[wire.CompletionChoice(
            index=0, text=text, finish_reason=finished.reason.value,
            logprobs=completion_logprobs(logprobs, 0) if logprobs is not None else None)],
        usage=usage_of(finished),
    )


Answer = TypeVar("Answer", wire.ChatCompletion, wire.Completion)


def merged(answers: list[Answer]) -> Answer:
    """Several answers to one prompt as one response: their choices, indexed in order; the
    prompt counted once, the completions together."""
    first = answers[0]
    if len(answers) == 1:
        return first
    for i, answer in enumerate(answers):
        answer.choices[0].index = i
    completion = sum(a.usage.completion_tokens for a in answers if a.usage is not None)
    usage = first.usage
    if usage is not None:
        usage = wire.Usage(usage.prompt_tokens, completion, usage.prompt_tokens + completion,
                           usage.prompt_tokens_details)
    return msgspec.structs.replace(first, choices=[a.choices[0] for a in answers],  # type: ignore[return-value]
                                   usage=usage)


StreamItem = (wire.ChatCompletionChunk | wire.Completion | wire.ErrorResponse | QueueNotice
              | LoadingNotice)


async def _translate(
    events: AsyncIterator[EngineEvent],
    text: Callable[[str, list[TokenLogprob] | None], StreamItem],
    final: Callable[[Finished], StreamItem],
    usage: Callable[[Finished], StreamItem] | None,
) -> AsyncIterator[StreamItem]:
    """The stream's shape, shared by chat and text: deltas, queue notices, one final chunk with the
    real finish_reason, the usage chunk when asked; an error is one frame and ends the stream."""
    async for event in events:
        if isinstance(event, TextDelta):
            yield text(event.text, event.logprobs)
        elif isinstance(event, Queued) and event.position > 0:
            yield QueueNotice(event.position)
        elif isinstance(event, Failed):
            yield error_frame(event)
            return
        elif isinstance(event, Finished):
            yield final(event)
            if usage is not None:
                yield usage(event)
            return


async def chat_chunks(
    ids: ResponseIds, events: AsyncIterator[EngineEvent], include_usage: bool, index: int = 0
) -> AsyncIterator[StreamItem]:
    def chunk(delta: wire.ChatDelta, finish: str | None = None,
              logprobs: wire.ChoiceLogprobs | None = None) -> wire.ChatCompletionChunk:
        return wire.ChatCompletionChunk(
            id=ids.id, created=ids.created, model=ids.model, system_fingerprint=ids.fingerprint,
            choices=[wire.ChatChunkChoice(index=index, delta=delta, finish_reason=finish,
                                          logprobs=logprobs)],
        )

    def usage(finished: Finished) -> wire.ChatCompletionChunk:
        return wire.ChatCompletionChunk(id=ids.id, created=ids.created, model=ids.model,
                                        system_fingerprint=ids.fingerprint, choices=[],
                                        usage=usage_of(finished))

    def text(piece: str, logprobs: list[TokenLogprob] | None) -> wire.ChatCompletionChunk:
        return chunk(wire.ChatDelta(content=piece),
                     logprobs=chat_logprobs(logprobs) if logprobs else None)

    yield chunk(wire.ChatDelta(role="assistant", content=""))
    async for item in _translate(events, text,
                                 lambda f: chunk(wire.ChatDelta(), f.reason.value),
                                 usage if include_usage else None):
        yield item


async def tool_chat_chunks(
    ids: ResponseIds, events: AsyncIterator[EngineEvent], include_usage: bool, index: int = 0, *,
    plan: tools.ToolPlan,
) -> AsyncIterator[StreamItem]:
    """A streamed answer to a request with tools: each call as one delta (`index`, `id`, `type`,
    `name`, `arguments`) once the answer is whole; a reply as content, as it comes where it
    cannot be a call (`tool_stream`), else as one delta at the end."""
    def chunk(delta: wire.ChatDelta, finish: str | None = None) -> wire.ChatCompletionChunk:
        return wire.ChatCompletionChunk(
            id=ids.id, created=ids.created, model=ids.model, system_fingerprint=ids.fingerprint,
            choices=[wire.ChatChunkChoice(index=index, delta=delta, finish_reason=finish)])

    yield chunk(wire.ChatDelta(role="assistant", content=""))
    answer = ToolAnswerStream(plan)
    async for event in events:
        if isinstance(event, TextDelta):
            text = answer.push(event.text)
            if text:
                yield chunk(wire.ChatDelta(content=text))
        elif isinstance(event, Queued) and event.position > 0:
            yield QueueNotice(event.position)
        elif isinstance(event, Failed):
            yield error_frame(event)
            return
        elif isinstance(event, Finished):
            rest, calls = answer.finish()
            if rest:
                yield chunk(wire.ChatDelta(content=rest))
            for i, call in enumerate(calls):
                yield chunk(wire.ChatDelta(tool_calls=[wire.ToolCallDelta(
                    index=i, id=call.id, type="function",
                    function=wire.FunctionDelta(call.function.name, call.function.arguments))]))
            yield chunk(wire.ChatDelta(), "tool_calls" if calls else event.reason.value)
            if include_usage:
                yield wire.ChatCompletionChunk(id=ids.id, created=ids.created, model=ids.model,
                                               system_fingerprint=ids.fingerprint, choices=[],
                                               usage=usage_of(event))
            return


async def completion_chunks(
    ids: ResponseIds, events: AsyncIterator[EngineEvent], include_usage: bool, index: int = 0
) -> AsyncIterator[StreamItem]:
    sent = 0  # characters of text sent so far: where the next token's text starts

    def chunk(text: str, logprobs: list[TokenLogprob] | None = None,
              finish: str | None = None) -> wire.Completion:
        nonlocal sent
        entries = completion_logprobs(logprobs, sent) if logprobs else None
        sent += len(text)
        return wire.Completion(
            id=ids.id, created=ids.created, model=ids.model, system_fingerprint=ids.fingerprint,
            choices=[wire.CompletionChoice(index=index, text=text, finish_reason=finish,
                                           logprobs=entries)],
        )

    def usage(finished: Finished) -> wire.Completion:
        return wire.Completion(id=ids.id, created=ids.created, model=ids.model,
                               system_fingerprint=ids.fingerprint, choices=[],
                               usage=usage_of(finished))

    async for item in _translate(events, chunk, lambda f: chunk("", None, f.reason.value),
                                 usage if include_usage else None):
        yield item


async def merged_chunks(parts: list[AsyncIterator[StreamItem]]) -> AsyncIterator[StreamItem]:
    """Several choices' streams as one, each item as soon as it comes (their `index` tells them
    apart); leaving early stops them all."""
    queue: asyncio.Queue[StreamItem | None] = asyncio.Queue()

    async def pump(part: AsyncIterator[StreamItem]) -> None:
        try:
            async for item in part:
                await queue.put(item)
        finally:
            await queue.put(None)

    tasks = [asyncio.create_task(pump(part)) for part in parts]
    try:
        remaining = len(parts)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()


def usage_chunk(ids: ResponseIds, chat: bool, finished: list[Finished]
                ) -> wire.ChatCompletionChunk | wire.Completion:
    """The closing usage chunk of a stream of several choices: the prompt once, their answers
    together."""
    completion = sum(f.completion_tokens for f in finished)
    prompt = finished[0].prompt_tokens if finished else 0
    usage = wire.Usage(prompt, completion, prompt + completion, wire.PromptTokensDetails(
        finished[0].cached_tokens if finished else 0))
    if chat:
        return wire.ChatCompletionChunk(id=ids.id, created=ids.created, model=ids.model,
                                        system_fingerprint=ids.fingerprint, choices=[],
                                        usage=usage)
    return wire.Completion(id=ids.id, created=ids.created, model=ids.model,
                           system_fingerprint=ids.fingerprint, choices=[], usage=usage)
