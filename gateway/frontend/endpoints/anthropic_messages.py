"""`POST /v1/messages` and `POST /v1/messages/count_tokens` (Anthropic's Messages API: Claude Code,
the Anthropic SDK) on the endpoint skeleton: the body becomes a chat request
(`prompt.anthropic_request`), runs on the chat path, and its answer is rendered as a Message or
as Anthropic's event sequence (`message_start`, `ping`, per block `content_block_start` /
`content_block_delta` / `content_block_stop`, `message_delta` with the stop reason and usage,
`message_stop`; a failure: one `error` event).

Usage counts reuse as Anthropic does: `input_tokens` are the prompt tokens computed,
`cache_read_input_tokens` those the conversation's KV cache already held.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from gateway.engine.events import Finished, FinishReason, TextDelta
from gateway.errors import GatewayError
from gateway.fleet.registry import ModelRegistry
from gateway.fleet.served_model import ServedModel
from gateway.frontend.endpoint import Streamed, built, serve, started
from gateway.frontend.error_frames import anthropic_error
from gateway.frontend.event_stream import LoadingNotice, QueueNotice, collect, rendered
from gateway.frontend.prompt.anthropic_request import chat_request
from gateway.frontend.prompt.completion_request import build_chat_request
from gateway.frontend.prompt.thinking_switches import wants_raw
from gateway.frontend.next_turn import then_next_turn
from gateway.frontend.reasoning import Thinking, thinking_of
from gateway.frontend.tools.answer_stream import ToolAnswerStream
from gateway.frontend.tools.plan import ToolPlan, arguments_object
from gateway.protocol import anthropic, openai

StreamItem = anthropic.StreamEvent | LoadingNotice | QueueNotice  # notices: none asked for


def stop_reason(finished: Finished, stops: list[str] | None, called: bool
                ) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) of an answer."""
    if called:
        return "tool_use", None
    if finished.reason is FinishReason.LENGTH:
        return "max_tokens", None
    if finished.stopping_word and finished.stopping_word in (stops or []):
        return "stop_sequence", finished.stopping_word
    return "end_turn", None


def usage_of(finished: Finished) -> anthropic.Usage:
    return anthropic.Usage(input_tokens=finished.prompt_tokens - finished.cached_tokens,
                           output_tokens=finished.completion_tokens,
                           cache_read_input_tokens=finished.cached_tokens)


def _blocks(text: str, calls: list[openai.ToolCall], reasoning: str | None = None
            ) -> list[anthropic.ThinkingBlock | anthropic.TextBlock | anthropic.ToolUseBlock]:
    blocks: list[anthropic.ThinkingBlock | anthropic.TextBlock | anthropic.ToolUseBlock] = []
    if reasoning is not None:
        blocks.append(anthropic.ThinkingBlock(reasoning))
    if text or not (calls or blocks):  # an empty answer still has its (empty) text block
        blocks.append(anthropic.TextBlock(text))
    blocks += [anthropic.ToolUseBlock(c.id, c.function.name, arguments_object(c)) for c in calls]
    return blocks


async def create_message(registry: ModelRegistry, body: anthropic.MessagesRequest, client: str
                         ) -> anthropic.MessageResponse | Streamed[StreamItem]:
    served = registry.get(body.model)
    return await serve(served, body.stream, lambda: _answer(served, body, client),
                       lambda error: anthropic.StreamEvent(type="error",
                                                           error=anthropic_error(error).error))


async def count_tokens(registry: ModelRegistry, body: anthropic.CountTokensRequest, client: str
                       ) -> anthropic.TokenCount:
    served = registry.get(body.model)
    await served.ensure_ready()
    request, _plan = await built(build_chat_request, served, chat_request(body), None, client)
    return anthropic.TokenCount(input_tokens=len(request.prompt_tokens))


async def _answer(served: ServedModel, body: anthropic.MessagesRequest, client: str
                  ) -> anthropic.MessageResponse | Streamed[StreamItem]:
    chat = chat_request(body)
    request, plan = await built(build_chat_request, served, chat, None, client)
    thinking = thinking_of(request, wants_raw(chat, served.config))
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    events = then_next_turn(await started(served, request, "messages"), served, chat, request,
                            thinking, plan)
    if body.stream:
        renderer = MessageEvents(message_id, served.id, len(request.prompt_tokens),
                                 body.stop_sequences, plan, thinking)
        return Streamed(rendered(events, renderer, notices=False))
    text, finished = await collect(events)
    reasoning = None
    if thinking is not None:
        reasoning, text = thinking.split(text)
    calls: list[openai.ToolCall] = []
    parsed = plan.read(text) if plan is not None else None
    if parsed is not None:
        text, calls = parsed.content or "", parsed.calls
    reason, sequence = stop_reason(finished, body.stop_sequences, bool(calls))
    return anthropic.MessageResponse(id=message_id, model=served.id,
                                     content=_blocks(text, calls, reasoning),
                                     stop_reason=reason, stop_sequence=sequence,
                                     usage=usage_of(finished))


class MessageEvents:
    """Anthropic's event sequence for one answer: text streamed as it comes (with tools, until it
    may be a call: `answer_stream`), each call a `tool_use` block once the answer is whole."""

    def __init__(self, message_id: str, model: str, prompt_tokens: int, stops: list[str] | None,
                 plan: ToolPlan | None, thinking: Thinking | None = None) -> None:
        self.message_id, self.model, self.prompt_tokens = message_id, model, prompt_tokens
        self.stops = stops
        self.answer = ToolAnswerStream(plan) if plan is not None else None
        self.split = thinking.splitter() if thinking is not None else None
        self.index = 0  # of the block being written
        self.block: str | None = None  # the open block's kind: "thinking" or "text"

    def opening(self) -> Iterable[anthropic.StreamEvent]:
        start = anthropic.MessageResponse(
            id=self.message_id, model=self.model, content=[], stop_reason=None,
            usage=anthropic.Usage(input_tokens=self.prompt_tokens, output_tokens=0))
        yield anthropic.StreamEvent(type="message_start", message=start)
        yield anthropic.StreamEvent(type="ping")

    def _write(self, kind: str, text: str) -> Iterable[anthropic.StreamEvent]:
        """`text` into a block of `kind` ("thinking" or "text"), opening it (and closing the
        other) first when needed."""
        if not text:
            return
        if self.block != kind:
            yield from self._close()
            self.block = kind
            empty = anthropic.TextBlock("") if kind == "text" else anthropic.ThinkingBlock("")
            yield anthropic.StreamEvent(type="content_block_start", index=self.index,
                                        content_block=empty)
        delta = (anthropic.Delta(type="text_delta", text=text) if kind == "text"
                 else anthropic.Delta(type="thinking_delta", thinking=text))
        yield anthropic.StreamEvent(type="content_block_delta", index=self.index, delta=delta)

    def _close(self) -> Iterable[anthropic.StreamEvent]:
        if self.block is not None:
            yield anthropic.StreamEvent(type="content_block_stop", index=self.index)
            self.block = None
            self.index += 1

    def _reply(self, text: str) -> Iterable[anthropic.StreamEvent]:
        yield from self._write("text", self.answer.push(text) if self.answer else text)

    def text(self, delta: TextDelta) -> Iterable[anthropic.StreamEvent]:
        if self.split is None:
            yield from self._reply(delta.text)
            return
        reasoning, reply = self.split.push(delta.text)
        yield from self._write("thinking", reasoning)
        yield from self._reply(reply)

    def finished(self, finished: Finished) -> Iterable[anthropic.StreamEvent]:
        if self.split is not None:
            reasoning, reply = self.split.finish()
            yield from self._write("thinking", reasoning)
            yield from self._reply(reply)
        calls: list[openai.ToolCall] = []
        if self.answer is not None:
            rest, calls = self.answer.finish()
            yield from self._write("text", rest)
        if not calls and self.block is None and self.index == 0:  # an empty answer: one block
            self.block = "text"
            yield anthropic.StreamEvent(type="content_block_start", index=0,
                                        content_block=anthropic.TextBlock(""))
        yield from self._close()
        for call in calls:
            yield anthropic.StreamEvent(type="content_block_start", index=self.index,
                                        content_block=anthropic.ToolUseBlock(
                                            call.id, call.function.name, {}))
            yield anthropic.StreamEvent(type="content_block_delta", index=self.index,
                                        delta=anthropic.Delta(type="input_json_delta",
                                                              partial_json=call.function.arguments))
            yield anthropic.StreamEvent(type="content_block_stop", index=self.index)
            self.index += 1
        reason, sequence = stop_reason(finished, self.stops, bool(calls))
        usage = usage_of(finished)
        yield anthropic.StreamEvent(
            type="message_delta", delta=anthropic.MessageDelta(reason, sequence),
            usage=anthropic.DeltaUsage(output_tokens=usage.output_tokens,
                                       input_tokens=usage.input_tokens,
                                       cache_read_input_tokens=usage.cache_read_input_tokens,
                                       cache_creation_input_tokens=0))
        yield anthropic.StreamEvent(type="message_stop")

    def failed(self, error: GatewayError) -> Iterable[anthropic.StreamEvent]:
        yield anthropic.StreamEvent(type="error", error=anthropic_error(error).error)
