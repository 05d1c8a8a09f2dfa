"""Engine events back into OpenAI's chat and text completion objects: whole responses, and the
renderers the one stream loop (`event_stream.rendered`) uses for their chunks.

Every object carries one envelope (`id`, `created`, `model`, `system_fingerprint`), made by
`ResponseIds`. Knows the OpenAI shapes, nothing of HTTP: the API layer frames the chunks as SSE.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from gateway import __version__
from gateway.engine.events import Finished, TextDelta, TokenLogprob
from gateway.errors import GatewayError
from gateway.frontend.error_frames import openai_error
from gateway.frontend.event_stream import LoadingNotice, QueueNotice
from gateway.frontend.reasoning import Thinking
from gateway.frontend.tools import plan as tools
from gateway.frontend.tools.answer_stream import ToolAnswerStream
from gateway.protocol import openai

StreamItem = (openai.ChatCompletionChunk | openai.Completion | openai.ErrorResponse | QueueNotice
              | LoadingNotice)


@dataclass
class ResponseIds:
    """One response's envelope, the same on each of its objects and chunks."""

    model: str
    prefix: str
    fingerprint: str = ""  # system_fingerprint: changes with the model file and the gateway build
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        self.id = f"{self.prefix}-{uuid.uuid4().hex[:24]}"

    def chat_chunk(self, choices: list[openai.ChatChunkChoice],
                   usage: openai.Usage | None = None) -> openai.ChatCompletionChunk:
        return openai.ChatCompletionChunk(id=self.id, created=self.created, model=self.model,
                                          system_fingerprint=self.fingerprint, choices=choices,
                                          usage=usage)

    def completion(self, choices: list[openai.CompletionChoice],
                   usage: openai.Usage | None = None) -> openai.Completion:
        return openai.Completion(id=self.id, created=self.created, model=self.model,
                                 system_fingerprint=self.fingerprint, choices=choices, usage=usage)

    def chat(self, choices: list[openai.ChatChoice], usage: openai.Usage) -> openai.ChatCompletion:
        return openai.ChatCompletion(id=self.id, created=self.created, model=self.model,
                                     system_fingerprint=self.fingerprint, choices=choices,
                                     usage=usage)


def fingerprint(model_identity: str) -> str:
    """OpenAI's `system_fingerprint`: the backend configuration a response came from. Ours
    changes with the model file (its identity) and the gateway's version."""
    digest = hashlib.sha256(f"{model_identity}:{__version__}".encode()).hexdigest()
    return f"fp_{digest[:10]}"


def usage_of(finished: Finished) -> openai.Usage:
    return openai.Usage(
        prompt_tokens=finished.prompt_tokens,
        completion_tokens=finished.completion_tokens,
        total_tokens=finished.prompt_tokens + finished.completion_tokens,
        prompt_tokens_details=openai.PromptTokensDetails(cached_tokens=finished.cached_tokens),
        completion_tokens_details=openai.CompletionTokensDetails(finished.reasoning_tokens),
    )


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", errors="replace")


def chat_logprobs(entries: list[TokenLogprob]) -> openai.ChoiceLogprobs:
    return openai.ChoiceLogprobs(content=[
        openai.ChatTokenLogprob(
            token=_text(e.piece), logprob=e.logprob, bytes=list(e.piece),
            top_logprobs=[openai.TopLogprob(_text(t.piece), t.logprob, list(t.piece)) for t in e.top])
        for e in entries])


def completion_logprobs(entries: list[TokenLogprob], offset: int) -> openai.CompletionLogprobs:
    """OpenAI's legacy shape; `offset`: where the first token's text starts in the answer."""
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(_text(e.piece))
    return openai.CompletionLogprobs(
        tokens=[_text(e.piece) for e in entries], token_logprobs=[e.logprob for e in entries],
        top_logprobs=[{_text(t.piece): t.logprob for t in e.top} for e in entries],
        text_offset=offsets)


# ---- whole responses ---------------------------------------------------------------------------


def _thought(reasoning: str | None) -> str | msgspec.UnsetType:
    return reasoning if reasoning is not None else msgspec.UNSET


def chat_completion(ids: ResponseIds, text: str, finished: Finished,
                    logprobs: list[TokenLogprob] | None = None,
                    reasoning: str | None = None) -> openai.ChatCompletion:
    message = openai.AssistantMessage(content=text, reasoning_content=_thought(reasoning))
    return ids.chat([openai.ChatChoice(
        index=0, message=message, finish_reason=finished.reason.value,
        logprobs=chat_logprobs(logprobs) if logprobs is not None else None)], usage_of(finished))


def tool_chat_completion(ids: ResponseIds, text: str, finished: Finished,
                         plan: tools.ToolPlan, reasoning: str | None = None
                         ) -> openai.ChatCompletion:
    """An answer to a request with tools: its calls (`finish_reason` "tool_calls"), or its reply;
    the raw text when it was cut short before it parsed."""
    parsed = plan.read(text)
    if parsed is None:
        message, reason = openai.AssistantMessage(content=text), finished.reason.value
    elif parsed.calls:
        message, reason = openai.AssistantMessage(content=None, tool_calls=parsed.calls), "tool_calls"
    else:
        message, reason = openai.AssistantMessage(content=parsed.content), finished.reason.value
    if reasoning is not None:
        message.reasoning_content = reasoning
    return ids.chat([openai.ChatChoice(index=0, message=message, finish_reason=reason)],
                    usage_of(finished))


def text_completion(ids: ResponseIds, text: str, finished: Finished,
                    logprobs: list[TokenLogprob] | None = None) -> openai.Completion:
    return ids.completion([openai.CompletionChoice(
        index=0, text=text, finish_reason=finished.reason.value,
        logprobs=completion_logprobs(logprobs, 0) if logprobs is not None else None)],
        usage_of(finished))


Answer = TypeVar("Answer", openai.ChatCompletion, openai.Completion)


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
        usage = openai.Usage(usage.prompt_tokens, completion, usage.prompt_tokens + completion,
                             usage.prompt_tokens_details)
    return msgspec.structs.replace(first, choices=[a.choices[0] for a in answers],  # type: ignore[return-value]
                                   usage=usage)


# ---- stream renderers --------------------------------------------------------------------------


@dataclass
class ChatChunks:
    """A chat answer's chunks: the role first (`opening`), each text as a delta, a closing
    chunk with the real finish_reason, the usage chunk when asked."""

    ids: ResponseIds
    include_usage: bool
    index: int = 0
    thinking: Thinking | None = None  # the model thinks: its reasoning goes apart

    def __post_init__(self) -> None:
        self.split = self.thinking.splitter() if self.thinking is not None else None

    def chunk(self, delta: openai.ChatDelta, finish: str | None = None,
              logprobs: openai.ChoiceLogprobs | None = None) -> openai.ChatCompletionChunk:
        return self.ids.chat_chunk([openai.ChatChunkChoice(index=self.index, delta=delta,
                                                           finish_reason=finish, logprobs=logprobs)])

    def opening(self) -> Iterable[StreamItem]:
        yield self.chunk(openai.ChatDelta(role="assistant", content=""))

    def text(self, delta: TextDelta) -> Iterable[StreamItem]:
        logprobs = chat_logprobs(delta.logprobs) if delta.logprobs else None
        if self.split is None:
            yield from self.content(delta.text, logprobs)
            return
        reasoning, reply = self.split.push(delta.text)
        if reasoning:
            yield self.chunk(openai.ChatDelta(reasoning_content=reasoning), logprobs=logprobs)
            logprobs = None
        if reply:
            yield from self.content(reply, logprobs)

    def content(self, text: str, logprobs: openai.ChoiceLogprobs | None = None
                ) -> Iterable[StreamItem]:
        yield self.chunk(openai.ChatDelta(content=text), logprobs=logprobs)

    def rest(self) -> Iterable[StreamItem]:
        """What the reasoning split still held (a tag cut short by the end)."""
        if self.split is not None:
            reasoning, reply = self.split.finish()
            if reasoning:
                yield self.chunk(openai.ChatDelta(reasoning_content=reasoning))
            if reply:
                yield from self.content(reply)

    def finished(self, finished: Finished) -> Iterable[StreamItem]:
        yield from self.rest()
        yield self.chunk(openai.ChatDelta(), finished.reason.value)
        if self.include_usage:
            yield self.ids.chat_chunk([], usage_of(finished))

    def failed(self, error: GatewayError) -> Iterable[StreamItem]:
        yield openai_error(error)


@dataclass
class ToolChatChunks(ChatChunks):
    """A streamed answer to a request with tools: each call as one delta (`index`, `id`, `type`,
    `name`, `arguments`) once the answer is whole; a reply as content, as it comes where it
    cannot be a call (`answer_stream`), else as one delta at the end."""

    plan: tools.ToolPlan | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        assert self.plan is not None
        self.answer = ToolAnswerStream(self.plan)

    def content(self, text: str, logprobs: openai.ChoiceLogprobs | None = None
                ) -> Iterable[StreamItem]:
        sendable = self.answer.push(text)  # the reply, where it cannot be a call
        if sendable:
            yield self.chunk(openai.ChatDelta(content=sendable))

    def finished(self, finished: Finished) -> Iterable[StreamItem]:
        yield from self.rest()
        rest, calls = self.answer.finish()
        if rest:
            yield self.chunk(openai.ChatDelta(content=rest))
        for i, call in enumerate(calls):
            yield self.chunk(openai.ChatDelta(tool_calls=[openai.ToolCallDelta(
                index=i, id=call.id, type="function",
                function=openai.FunctionDelta(call.function.name, call.function.arguments))]))
        yield self.chunk(openai.ChatDelta(), "tool_calls" if calls else finished.reason.value)
        if self.include_usage:
            yield self.ids.chat_chunk([], usage_of(finished))


@dataclass
class CompletionChunks:
    """A text completion's chunks: each text (with its logprobs' offsets), a closing chunk with
    the real finish_reason, the usage chunk when asked."""

    ids: ResponseIds
    include_usage: bool
    index: int = 0
    sent: int = 0  # characters of text sent so far: where the next token's text starts

    def opening(self) -> Iterable[StreamItem]:
        return ()

    def chunk(self, text: str, logprobs: list[TokenLogprob] | None = None,
              finish: str | None = None) -> openai.Completion:
        entries = completion_logprobs(logprobs, self.sent) if logprobs else None
        self.sent += len(text)
        return self.ids.completion([openai.CompletionChoice(
            index=self.index, text=text, finish_reason=finish, logprobs=entries)])

    def text(self, delta: TextDelta) -> Iterable[StreamItem]:
        yield self.chunk(delta.text, delta.logprobs)

    def finished(self, finished: Finished) -> Iterable[StreamItem]:
        yield self.chunk("", None, finished.reason.value)
        if self.include_usage:
            yield self.ids.completion([], usage_of(finished))

    def failed(self, error: GatewayError) -> Iterable[StreamItem]:
        yield openai_error(error)


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
                ) -> openai.ChatCompletionChunk | openai.Completion:
    """The closing usage chunk of a stream of several choices: the prompt once, their answers
    together."""
    completion = sum(f.completion_tokens for f in finished)
    prompt = finished[0].prompt_tokens if finished else 0
    usage = openai.Usage(prompt, completion, prompt + completion, openai.PromptTokensDetails(
        finished[0].cached_tokens if finished else 0), openai.CompletionTokensDetails(
        sum(f.reasoning_tokens for f in finished)))
    return ids.chat_chunk([], usage) if chat else ids.completion([], usage)
