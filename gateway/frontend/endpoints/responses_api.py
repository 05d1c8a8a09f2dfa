"""The Responses API (`POST /v1/responses`) on the chat path.

A request becomes a chat request (input items to messages, `instructions` to a system message,
flat function tools to chat tools, `max_output_tokens` to `max_completion_tokens`) and runs as
one. `previous_response_id` continues a stored conversation, and does it on its own KV cache:
every response of a chain runs as one named conversation (named after the chain's first
response), so a follow-up computes only what is new (`usage.input_tokens_details.cached_tokens`).
Stored responses are bounded, expire, and are found only by the client that made them.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import msgspec

from gateway.protocol import responses as rw
from gateway.protocol import openai
from gateway.engine.events import Finished, FinishReason, TextDelta
from gateway.errors import GatewayError, InvalidRequest, NotFound
from gateway.frontend.tools import plan as tools
from gateway.frontend.endpoint import Streamed, built, serve, started
from gateway.frontend.event_stream import LoadingNotice, QueueNotice, collect, rendered
from gateway.fleet.registry import ModelRegistry
from gateway.fleet.served_model import ServedModel
from gateway.frontend.prompt.completion_request import build_chat_request

STORE_CAPACITY = 1000  # responses kept for previous_response_id; the oldest go first
STORE_TTL_S = 3600.0


@dataclass
class Stored:
    client: str
    chain: str  # the conversation's name: its first response's id
    messages: list[openai.ChatMessage]  # the conversation so far, this response's output included
    expires: float


class ResponseStore:
    def __init__(self, capacity: int = STORE_CAPACITY, ttl_s: float = STORE_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.ttl_s, self.clock = capacity, ttl_s, clock
        self._items: OrderedDict[str, Stored] = OrderedDict()

    def put(self, response_id: str, client: str, chain: str,
            messages: list[openai.ChatMessage]) -> None:
        self._items[response_id] = Stored(client, chain, messages, self.clock() + self.ttl_s)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, response_id: str, client: str) -> Stored | None:
        stored = self._items.get(response_id)
        if stored is None or stored.client != client:
            return None
        if stored.expires < self.clock():
            del self._items[response_id]
            return None
        return stored


def _text(content: str | list[rw.InputText] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(part.text or "" for part in content)


def input_messages(body: rw.ResponsesRequest) -> list[openai.ChatMessage]:
    if isinstance(body.input, str):
        return [openai.ChatMessage(role="user", content=body.input)] if body.input else []
    messages = []
    for i, item in enumerate(body.input):
        if item.type == "message":
            messages.append(openai.ChatMessage(role=item.role or "user", content=_text(item.content)))
        elif item.type == "function_call":
            call = openai.ToolCall(id=item.call_id or f"call_{i}", function=openai.ToolCallFunction(
                item.name or "", item.arguments or "{}"))
            messages.append(openai.ChatMessage(role="assistant", content=None, tool_calls=[call]))
        elif item.type == "function_call_output":
            messages.append(openai.ChatMessage(role="tool", tool_call_id=item.call_id,
                                             content=item.output or ""))
        else:
            raise InvalidRequest(f"Input item type `{item.type}` is not supported",
                                 param=f"input[{i}].type")
    return messages


def _chat_tools(body: rw.ResponsesRequest) -> tuple[list[openai.Tool] | None,
                                                     str | openai.NamedToolChoice | None]:
    tools_in = []
    for i, tool in enumerate(body.tools or []):
        if tool.type != "function" or not tool.name:
            raise InvalidRequest("Only function tools (with a `name`) are supported",
                                 param=f"tools[{i}]")
        tools_in.append(openai.Tool(type="function", function=openai.FunctionDefinition(
            tool.name, tool.description, tool.parameters)))
    choice = body.tool_choice
    if isinstance(choice, rw.NamedFunctionChoice):
        return tools_in or None, openai.NamedToolChoice("function", openai.NamedFunction(choice.name))
    return tools_in or None, choice


@dataclass
class Prepared:
    chat: openai.ChatCompletionRequest
    history: list[openai.ChatMessage]  # the conversation without `instructions`
    chain: str


def prepare(store: ResponseStore, body: rw.ResponsesRequest, response_id: str,
            client: str) -> Prepared:
    history: list[openai.ChatMessage] = []
    chain = response_id
    if body.previous_response_id is not None:
        stored = store.get(body.previous_response_id, client)
        if stored is None:
            raise NotFound(f"Previous response with id '{body.previous_response_id}' not found "
                           "(responses are kept for an hour)", param="previous_response_id",
                           code="response_not_found")
        history, chain = list(stored.messages), stored.chain
    history += input_messages(body)
    if not history:
        raise InvalidRequest("`input` must not be empty", param="input")
    system = [openai.ChatMessage(role="system", content=body.instructions)] if body.instructions else []
    chat_tools, choice = _chat_tools(body)
    chat = openai.ChatCompletionRequest(
        model=body.model, messages=[*system, *history], max_completion_tokens=body.max_output_tokens,
        temperature=body.temperature, top_p=body.top_p, tools=chat_tools, tool_choice=choice,
        parallel_tool_calls=body.parallel_tool_calls, prompt_cache_key=f"response:{chain}")
    return Prepared(chat, history, chain)


def _output(text: str, finished: Finished, plan: tools.ToolPlan | None
            ) -> tuple[list[rw.OutputMessage | rw.FunctionCall], openai.ChatMessage]:
    """The response's output items, and the assistant message they add to the conversation."""
    parsed = plan.read(text) if plan is not None else None
    if parsed is not None and parsed.calls:
        items: list[rw.OutputMessage | rw.FunctionCall] = [
            rw.FunctionCall(id=f"fc_{uuid.uuid4().hex[:24]}", call_id=c.id, name=c.function.name,
                            arguments=c.function.arguments) for c in parsed.calls]
        return items, openai.ChatMessage(role="assistant", content=None, tool_calls=parsed.calls)
    reply = parsed.content if parsed is not None and parsed.content is not None else text
    message = rw.OutputMessage(id=f"msg_{uuid.uuid4().hex[:24]}", content=[rw.OutputText(reply)])
    return [message], openai.ChatMessage(role="assistant", content=reply)


def _response(body: rw.ResponsesRequest, response_id: str, model: str, created: int,
              output: list[rw.OutputMessage | rw.FunctionCall], finished: Finished | None
              ) -> rw.Response:
    usage: rw.ResponseUsage | msgspec.UnsetType = msgspec.UNSET
    status, incomplete = "in_progress", None
    if finished is not None:
        usage = rw.ResponseUsage(
            input_tokens=finished.prompt_tokens, output_tokens=finished.completion_tokens,
            total_tokens=finished.prompt_tokens + finished.completion_tokens,
            input_tokens_details=rw.InputTokensDetails(finished.cached_tokens))
        status = "completed"
        if finished.reason is FinishReason.LENGTH:
            status, incomplete = "incomplete", rw.IncompleteDetails("max_output_tokens")
    return rw.Response(
        id=response_id, created_at=created, model=model, status=status, output=output, usage=usage,
        previous_response_id=body.previous_response_id, instructions=body.instructions,
        max_output_tokens=body.max_output_tokens, temperature=body.temperature, top_p=body.top_p,
        tools=[{"type": "function", "name": t.name, "description": t.description,
                "parameters": t.parameters, "strict": t.strict} for t in body.tools or []],
        tool_choice=body.tool_choice or "auto", incomplete_details=incomplete,
        metadata=body.metadata or {}, store=body.store,
        user=body.user if body.user is not None else msgspec.UNSET)


StreamItem = rw.StreamEvent | LoadingNotice | QueueNotice  # notices: none asked for


async def respond(registry: ModelRegistry, store: ResponseStore, body: rw.ResponsesRequest,
                  client: str) -> rw.Response | Streamed[StreamItem]:
    served = registry.get(body.model)
    return await serve(served, body.stream, lambda: _answer(served, store, body, client),
                       _error_event)


def _error_event(error: GatewayError, sequence: int = 0) -> rw.StreamEvent:
    """The Responses stream's `error` event: the same code as the HTTP error would carry."""
    return rw.StreamEvent(type="error", sequence_number=sequence, code=error.code,
                          message=error.message, param=error.param)


async def _answer(served: ServedModel, store: ResponseStore, body: rw.ResponsesRequest,
                  client: str) -> rw.Response | Streamed[StreamItem]:
    response_id, created = f"resp_{uuid.uuid4().hex}", int(time.time())
    prepared = prepare(store, body, response_id, client)
    request, plan = await built(build_chat_request, served, prepared.chat, None, client)
    events = await started(served, request, "responses")

    def finish(text: str, finished: Finished) -> rw.Response:
        output, said = _output(text, finished, plan)
        if body.store:
            store.put(response_id, client, prepared.chain, [*prepared.history, said])
        return _response(body, response_id, served.id, created, output, finished)

    if body.stream:
        start = _response(body, response_id, served.id, created, [], None)
        renderer = ResponseEvents(start, finish, plan is not None)
        return Streamed(rendered(events, renderer, notices=False))
    text, finished = await collect(events)
    return finish(text, finished)


class ResponseEvents:
    """The typed events: created, in_progress, then the message's text as it comes (with tools,
    the output items once the answer is whole), then completed; a failure, one `error` event."""

    def __init__(self, start: rw.Response, finish: Callable[[str, Finished], rw.Response],
                 with_tools: bool) -> None:
        self.start, self.finish, self.with_tools = start, finish, with_tools
        self.sequence = 0
        self.message_id = f"msg_{uuid.uuid4().hex[:24]}"
        self.parts: list[str] = []
        self.opened = False

    def event(self, type_: str, **fields: object) -> rw.StreamEvent:
        self.sequence += 1
        return rw.StreamEvent(type=type_, sequence_number=self.sequence - 1, **fields)  # type: ignore[arg-type]

    def opening(self) -> Iterable[rw.StreamEvent]:
        yield self.event("response.created", response=self.start)
        yield self.event("response.in_progress", response=self.start)

    def text(self, delta: TextDelta) -> Iterable[rw.StreamEvent]:
        if not delta.text:
            return
        self.parts.append(delta.text)
        if self.with_tools:
            return
        if not self.opened:
            self.opened = True
            yield self.event("response.output_item.added", output_index=0, item=rw.OutputMessage(
                id=self.message_id, content=[], status="in_progress"))
            yield self.event("response.content_part.added", output_index=0, content_index=0,
                             item_id=self.message_id, part=rw.OutputText(""))
        yield self.event("response.output_text.delta", output_index=0, content_index=0,
                         item_id=self.message_id, delta=delta.text, logprobs=[])

    def failed(self, error: GatewayError) -> Iterable[rw.StreamEvent]:
        yield _error_event(error, self.sequence)  # after the first byte: it ends the stream
        self.sequence += 1

    def finished(self, finished: Finished) -> Iterable[rw.StreamEvent]:
        event, with_tools, opened = self.event, self.with_tools, self.opened
        final = self.finish("".join(self.parts), finished)
        if not with_tools:  # the streamed message keeps the id its deltas named
            final.output = [rw.OutputMessage(id=self.message_id,
                                             content=[rw.OutputText("".join(self.parts))])]
        for index, out in enumerate(final.output):
            if with_tools or not opened:
                yield event("response.output_item.added", output_index=index, item=out)
            if isinstance(out, rw.OutputMessage):
                text = out.content[0].text
                if with_tools or not opened:
                    yield event("response.content_part.added", output_index=index,
                                content_index=0, item_id=out.id, part=rw.OutputText(""))
                    if text:
                        yield event("response.output_text.delta", output_index=index,
                                    content_index=0, item_id=out.id, delta=text, logprobs=[])
                yield event("response.output_text.done", output_index=index, content_index=0,
                            item_id=out.id, text=text, logprobs=[])
                yield event("response.content_part.done", output_index=index,
                            content_index=0, item_id=out.id, part=out.content[0])
            else:
                yield event("response.function_call_arguments.delta", output_index=index,
                            item_id=out.id, delta=out.arguments)
                yield event("response.function_call_arguments.done", output_index=index,
                            item_id=out.id, name=out.name, arguments=out.arguments)
            yield event("response.output_item.done", output_index=index, item=out)
        yield event("response.completed", response=final)
