"""A streamed Responses answer's typed events (`POST /v1/responses` with `stream: true`).

created, in_progress; a thinking model's reasoning as a `reasoning` output item whose text
streams as `response.reasoning_text.delta`; the message's text as `response.output_text.delta`
(with tools, the output items once the answer is whole); each item's done events; completed. A
failure: one `error` event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gateway.engine.events import Finished, TextDelta
from gateway.errors import GatewayError
from gateway.frontend.reasoning import Thinking
from gateway.protocol import responses as rw


@dataclass(frozen=True)
class StreamedIds:
    """The ids the streamed items carry, which the final response keeps."""

    message: str = field(default_factory=lambda: f"msg_{uuid.uuid4().hex[:24]}")
    reasoning: str = field(default_factory=lambda: f"rs_{uuid.uuid4().hex[:24]}")


# (the reply text, the reasoning or None, the end) -> the whole response
Finish = Callable[[str, str | None, Finished, StreamedIds], rw.Response]


def error_event(error: GatewayError, sequence: int = 0) -> rw.StreamEvent:
    """The Responses stream's `error` event: the same code as the HTTP error would carry."""
    return rw.StreamEvent(type="error", sequence_number=sequence, code=error.code,
                          message=error.message, param=error.param)


class ResponseEvents:
    def __init__(self, start: rw.Response, finish: Finish, with_tools: bool,
                 thinking: Thinking | None) -> None:
        self.start, self.finish, self.with_tools = start, finish, with_tools
        self.split = thinking.splitter() if thinking is not None else None
        self.ids = StreamedIds()
        self.sequence = 0
        self.parts: list[str] = []
        self.thought: list[str] = []
        self.streamed: set[str] = set()  # the ids of the items already added
        self.open: str | None = None  # the item whose text is streaming: "reasoning", "message"

    def event(self, type_: str, **fields: object) -> rw.StreamEvent:
        self.sequence += 1
        return rw.StreamEvent(type=type_, sequence_number=self.sequence - 1, **fields)  # type: ignore[arg-type]

    def opening(self) -> Iterable[rw.StreamEvent]:
        yield self.event("response.created", response=self.start)
        yield self.event("response.in_progress", response=self.start)

    def text(self, delta: TextDelta) -> Iterable[rw.StreamEvent]:
        if self.split is None:
            yield from self._pieces("", delta.text)
            return
        yield from self._pieces(*self.split.push(delta.text))

    def _pieces(self, reasoning: str, reply: str) -> Iterable[rw.StreamEvent]:
        if reasoning:
            self.thought.append(reasoning)
            if "message" not in self.streamed:  # (reasoning after the reply: in the end only)
                yield from self._reasoning_text(reasoning)
        if reply:
            self.parts.append(reply)
            if not self.with_tools:
                yield from self._message_text(reply)

    def _reasoning_text(self, text: str) -> Iterable[rw.StreamEvent]:
        item_id = self.ids.reasoning
        if self.open != "reasoning":
            self.open = "reasoning"
            self.streamed.add("reasoning")
            yield self.event("response.output_item.added", output_index=0, item=rw.ReasoningItem(
                id=item_id, content=[], status="in_progress"))
            yield self.event("response.content_part.added", output_index=0, content_index=0,
                             item_id=item_id, part=rw.ReasoningText(""))
        yield self.event("response.reasoning_text.delta", output_index=0, content_index=0,
                         item_id=item_id, delta=text)

    def _message_text(self, text: str) -> Iterable[rw.StreamEvent]:
        index = 1 if "reasoning" in self.streamed else 0
        if self.open != "message":
            yield from self._reasoning_done()
            self.open = "message"
            self.streamed.add("message")
            yield self.event("response.output_item.added", output_index=index,
                             item=rw.OutputMessage(id=self.ids.message, content=[],
                                                   status="in_progress"))
            yield self.event("response.content_part.added", output_index=index, content_index=0,
                             item_id=self.ids.message, part=rw.OutputText(""))
        yield self.event("response.output_text.delta", output_index=index, content_index=0,
                         item_id=self.ids.message, delta=text, logprobs=[])

    def _reasoning_done(self, item: rw.ReasoningItem | None = None) -> Iterable[rw.StreamEvent]:
        """The streamed reasoning item's done events (once)."""
        if self.open != "reasoning":
            return
        self.open = None
        text = "".join(self.thought)
        item = item or rw.ReasoningItem(id=self.ids.reasoning, content=[rw.ReasoningText(text)])
        yield self.event("response.reasoning_text.done", output_index=0, content_index=0,
                         item_id=item.id, text=item.content[0].text)
        yield self.event("response.content_part.done", output_index=0, content_index=0,
                         item_id=item.id, part=item.content[0])
        yield self.event("response.output_item.done", output_index=0, item=item)

    def failed(self, error: GatewayError) -> Iterable[rw.StreamEvent]:
        yield error_event(error, self.sequence)  # after the first byte: it ends the stream
        self.sequence += 1

    def finished(self, finished: Finished) -> Iterable[rw.StreamEvent]:
        if self.split is not None:
            yield from self._pieces(*self.split.finish())
        thought = "".join(self.thought) or None  # an empty block (thinking off): no item
        final = self.finish("".join(self.parts), thought, finished, self.ids)
        for index, out in enumerate(final.output):
            yield from self._item_events(index, out)
        yield self.event("response.completed", response=final)

    def _item_events(self, index: int, out: rw.OutputItem) -> Iterable[rw.StreamEvent]:
        """An output item's events: all of them, or the done ones for an item streamed."""
        event = self.event
        if isinstance(out, rw.ReasoningItem):
            if "reasoning" in self.streamed:
                yield from self._reasoning_done(out)
                return
            yield event("response.output_item.added", output_index=index, item=out)
            yield event("response.content_part.added", output_index=index, content_index=0,
                        item_id=out.id, part=rw.ReasoningText(""))
            if out.content[0].text:
                yield event("response.reasoning_text.delta", output_index=index, content_index=0,
                            item_id=out.id, delta=out.content[0].text)
            yield event("response.reasoning_text.done", output_index=index, content_index=0,
                        item_id=out.id, text=out.content[0].text)
            yield event("response.content_part.done", output_index=index, content_index=0,
                        item_id=out.id, part=out.content[0])
        elif isinstance(out, rw.OutputMessage):
            text = out.content[0].text
            if out.id != self.ids.message or "message" not in self.streamed:
                yield event("response.output_item.added", output_index=index, item=out)
                yield event("response.content_part.added", output_index=index, content_index=0,
                            item_id=out.id, part=rw.OutputText(""))
                if text:
                    yield event("response.output_text.delta", output_index=index,
                                content_index=0, item_id=out.id, delta=text, logprobs=[])
            yield event("response.output_text.done", output_index=index, content_index=0,
                        item_id=out.id, text=text, logprobs=[])
            yield event("response.content_part.done", output_index=index, content_index=0,
                        item_id=out.id, part=out.content[0])
        else:
            yield event("response.output_item.added", output_index=index, item=out)
            yield event("response.function_call_arguments.delta", output_index=index,
                        item_id=out.id, delta=out.arguments)
            yield event("response.function_call_arguments.done", output_index=index,
                        item_id=out.id, name=out.name, arguments=out.arguments)
        yield event("response.output_item.done", output_index=index, item=out)
