"""Ollama's generating routes (`/api/chat`, `/api/generate`, `/api/embed`, `/api/embeddings`) on the
endpoint skeleton: the body becomes an OpenAI-shaped request (`prompt.ollama_request`), runs on
the chat, completion or embeddings path, and comes back as Ollama's NDJSON chunks (streamed by
default) or one object: text as `message.content` / `response`, calls as `tool_calls` with
arguments as objects, and a last chunk with `done_reason` and the metrics in nanoseconds.

An empty `messages` or `prompt` only wakes the model (`done_reason` "load"; with `keep_alive`
0, it goes to sleep: "unload"), as Ollama does. A request's `keep_alive` becomes its model's
sleep timer from then on.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import msgspec

from gateway.engine.events import EngineEvent, Finished, FinishReason, TextDelta
from gateway.errors import GatewayError
from gateway.fleet.registry import ModelRegistry
from gateway.fleet.served_model import ServedModel
from gateway.frontend.endpoint import Streamed, built, serve, started
from gateway.frontend.endpoints.embeddings import embed
from gateway.frontend.error_frames import ollama_error
from gateway.frontend.event_stream import LoadingNotice, QueueNotice, collect, rendered
from gateway.frontend.prompt.completion_request import (
    build_chat_request,
    build_completion_request,
)
from gateway.frontend.prompt.ollama_request import (
    TAG,
    chat_request,
    generate_request,
    keep_alive_s,
    model_name,
)
from gateway.frontend.prompt.thinking_switches import wants_raw
from gateway.frontend.next_turn import then_next_turn
from gateway.frontend.reasoning import Thinking, thinking_of
from gateway.frontend.tools.answer_stream import ToolAnswerStream
from gateway.frontend.tools.plan import ToolPlan, arguments_object
from gateway.protocol import ollama, openai

Chunk = ollama.ChatChunk | ollama.GenerateChunk | dict[str, str]
StreamItem = Chunk | QueueNotice | LoadingNotice  # notices: not written (NDJSON has no comments)


def now() -> str:
    """RFC 3339 in UTC, as Ollama's `created_at`."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class Clock:
    """The request's times (ns): sent to its engine, its first text, its end."""

    sent: int = field(default_factory=time.perf_counter_ns)
    first: int | None = None

    def metrics(self, finished: Finished) -> dict[str, int]:
        ended = time.perf_counter_ns()
        first = self.first or ended
        return {"total_duration": ended - self.sent, "load_duration": 0,
                "prompt_eval_count": finished.prompt_tokens - finished.cached_tokens,
                "prompt_eval_duration": first - self.sent,
                "eval_count": finished.completion_tokens, "eval_duration": ended - first}


def done_reason(finished: Finished) -> str:
    return "length" if finished.reason is FinishReason.LENGTH else "stop"


def _ollama_calls(calls: list[openai.ToolCall]) -> list[ollama.ToolCall]:
    return [ollama.ToolCall(ollama.ToolFunctionCall(c.function.name, arguments_object(c)), c.id)
            for c in calls]


def _remember(served: ServedModel, keep_alive: ollama.KeepAlive) -> None:
    keep = keep_alive_s(keep_alive)
    if keep is not None:
        served.keep_alive_override = keep


async def _loaded(served: ServedModel, keep_alive: ollama.KeepAlive, chat: bool) -> Chunk:
    """An empty request: wake the model (or, with `keep_alive` 0, let it sleep)."""
    await served.ensure_ready()
    # `keep_alive` 0 (already its timer): it sleeps as soon as no request holds it, never
    # under another client's answer
    reason = "unload" if keep_alive_s(keep_alive) == 0 else "load"
    if chat:
        return ollama.ChatChunk(served.id + TAG, now(), ollama.OutMessage(), True, done_reason=reason)
    return ollama.GenerateChunk(served.id + TAG, now(), "", True, done_reason=reason)


# ---- /api/chat and /api/generate ---------------------------------------------------------------


async def chat(registry: ModelRegistry, body: ollama.ChatRequest, client: str
               ) -> Chunk | Streamed[StreamItem]:
    served = registry.get(model_name(body.model))
    _remember(served, body.keep_alive)
    if not body.messages:
        return await _loaded(served, body.keep_alive, chat=True)
    return await serve(served, body.stream, lambda: _answer(served, body, client), ollama_error)


async def generate(registry: ModelRegistry, body: ollama.GenerateRequest, client: str
                   ) -> Chunk | Streamed[StreamItem]:
    served = registry.get(model_name(body.model))
    _remember(served, body.keep_alive)
    if not body.prompt and body.suffix is None:
        return await _loaded(served, body.keep_alive, chat=False)
    return await serve(served, body.stream, lambda: _answer(served, body, client), ollama_error)


async def _answer(served: ServedModel, body: ollama.ChatRequest | ollama.GenerateRequest,
                  client: str) -> Chunk | Streamed[StreamItem]:
    wire = chat_request(body) if isinstance(body, ollama.ChatRequest) else generate_request(body)
    plan: ToolPlan | None = None
    if isinstance(wire, openai.ChatCompletionRequest):
        request, plan = await built(build_chat_request, served, wire, None, client)
    else:
        request = await built(build_completion_request, served, wire, None, client)
    route = "ollama_chat" if isinstance(body, ollama.ChatRequest) else "ollama_generate"
    clock = Clock()
    thinking = thinking_of(request, isinstance(wire, openai.ChatCompletionRequest)
                           and wants_raw(wire, served.config))
    events = _clocked(await started(served, request, route), clock)
    if isinstance(wire, openai.ChatCompletionRequest) and isinstance(body, ollama.ChatRequest):
        events = then_next_turn(events, served, wire, request, thinking, plan)
    renderer = OllamaChunks(served.id, isinstance(body, ollama.ChatRequest), clock, plan, thinking)
    if body.stream:
        return Streamed(rendered(events, renderer, notices=False))
    text, finished = await collect(events)
    renderer.parts.append(text)
    return renderer.whole(finished)


async def _clocked(events: AsyncIterator[EngineEvent], clock: Clock) -> AsyncIterator[EngineEvent]:
    async for event in events:
        if isinstance(event, TextDelta) and clock.first is None:
            clock.first = time.perf_counter_ns()
        yield event


class OllamaChunks:
    """One answer as Ollama's chunks: `/api/chat`'s `message` or `/api/generate`'s `response`;
    with tools, text as it comes while it cannot be a call (`answer_stream`), calls in one
    chunk once the answer is whole; then the `done` chunk with the metrics."""

    def __init__(self, model: str, chat: bool, clock: Clock, plan: ToolPlan | None,
                 thinking: Thinking | None = None) -> None:
        self.model, self.chat, self.clock = model, chat, clock
        self.answer = ToolAnswerStream(plan) if plan is not None else None
        self.plan = plan
        self.thinking = thinking
        self.split = thinking.splitter() if thinking is not None else None
        self.parts: list[str] = []

    def _chunk(self, text: str, calls: list[openai.ToolCall] | None = None, done: bool = False,
               finished: Finished | None = None, thought: str | None = None) -> Chunk:
        end: dict[str, Any] = {}
        if finished is not None:
            end = {"done_reason": done_reason(finished), **self.clock.metrics(finished)}
        if self.chat:
            message = ollama.OutMessage(content=text, tool_calls=_ollama_calls(calls) if calls
                                        else msgspec.UNSET,
                                        thinking=thought if thought is not None else msgspec.UNSET)
            return ollama.ChatChunk(self.model + TAG, now(), message, done, **end)
        return ollama.GenerateChunk(self.model + TAG, now(), text, done, thinking=thought, **end)

    def opening(self) -> Iterable[Chunk]:
        return ()

    def _reply(self, text: str) -> Iterable[Chunk]:
        text = self.answer.push(text) if self.answer is not None else text
        if text:
            yield self._chunk(text)

    def text(self, delta: TextDelta) -> Iterable[Chunk]:
        if self.split is None:
            yield from self._reply(delta.text)
            return
        thought, reply = self.split.push(delta.text)
        if thought:
            yield self._chunk("", thought=thought)
        yield from self._reply(reply)

    def finished(self, finished: Finished) -> Iterable[Chunk]:
        if self.split is not None:
            thought, reply = self.split.finish()
            if thought:
                yield self._chunk("", thought=thought)
            yield from self._reply(reply)
        if self.answer is not None:
            rest, calls = self.answer.finish()
            if rest or calls:
                yield self._chunk(rest, calls)
        yield self._chunk("", done=True, finished=finished)

    def failed(self, error: GatewayError) -> Iterable[Chunk]:
        yield ollama_error(error)  # its own line, and the stream ends

    def whole(self, finished: Finished) -> Chunk:
        """The answer in one object (`stream: false`)."""
        text, calls = "".join(self.parts), []
        thought = None
        if self.thinking is not None:
            thought, text = self.thinking.split(text)
        parsed = self.plan.read(text) if self.plan is not None else None
        if parsed is not None:
            text, calls = parsed.content or "", parsed.calls
        return self._chunk(text, calls, done=True, finished=finished, thought=thought)


# ---- embeddings --------------------------------------------------------------------------------


def _normalised(vector: list[float], dimensions: int | None) -> list[float]:
    kept = vector[:dimensions] if dimensions else vector
    norm = math.sqrt(sum(v * v for v in kept)) or 1.0
    return [v / norm for v in kept]


async def embed_texts(registry: ModelRegistry, body: ollama.EmbedRequest, client: str
                      ) -> ollama.EmbedResponse:
    """`/api/embed`: L2-normalised vectors (cut to `dimensions` first, as Ollama)."""
    served = registry.get(model_name(body.model))
    _remember(served, body.keep_alive)
    texts: list[str | int | list[int]] = [body.input] if isinstance(body.input, str) else [*body.input]
    if not texts:
        return ollama.EmbedResponse(served.id + TAG, [], 0, 0, 0)
    clock = Clock()
    answer = await embed(registry, openai.EmbeddingRequest(model=served.id, input=texts), client)
    vectors = [_normalised(e.embedding, body.dimensions) for e in answer.data
               if isinstance(e.embedding, list)]
    return ollama.EmbedResponse(served.id + TAG, vectors, time.perf_counter_ns() - clock.sent, 0,
                                answer.usage.prompt_tokens)


async def embed_prompt(registry: ModelRegistry, body: ollama.EmbeddingsRequest, client: str
                       ) -> ollama.EmbeddingResponse:
    """`/api/embeddings` (the older route): one vector, as the model gives it."""
    served = registry.get(model_name(body.model))
    _remember(served, body.keep_alive)
    if not body.prompt:
        return ollama.EmbeddingResponse([])
    answer = await embed(registry, openai.EmbeddingRequest(model=served.id, input=body.prompt),
                         client)
    vector = answer.data[0].embedding
    return ollama.EmbeddingResponse(vector if isinstance(vector, list) else [])
