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
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from gateway.protocol import responses as rw
from gateway.protocol import openai
from gateway.engine.events import Finished, FinishReason
from gateway.errors import InvalidRequest, NotFound
from gateway.frontend.tools import plan as tools
from gateway.frontend.endpoint import Streamed, built, serve, started
from gateway.frontend.endpoints.response_events import ResponseEvents, StreamedIds, error_event
from gateway.frontend.event_stream import LoadingNotice, QueueNotice, collect, rendered
from gateway.frontend.prompt.thinking_switches import wants_raw
from gateway.frontend.next_turn import then_next_turn
from gateway.frontend.reasoning import thinking_of
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
    messages: list[openai.ChatMessage] = []
    thought: list[str] = []  # reasoning items: the thinking of the assistant turn they precede
    for i, item in enumerate(body.input):
        if item.type == "reasoning":
            parts = (item.content if isinstance(item.content, list) else []) or item.summary or []
            thought += [part.text or "" for part in parts]
            continue
        if item.type == "message" and item.role == "assistant" and thought:
            messages.append(openai.ChatMessage(role="assistant", content=_text(item.content),
                                               reasoning_content="".join(thought)))
            thought = []
        elif item.type == "message":
            messages.append(openai.ChatMessage(role=item.role or "user", content=_text(item.content)))
        elif item.type == "function_call":
            call = openai.ToolCall(id=item.call_id or f"call_{i}", function=openai.ToolCallFunction(
                item.name or "", item.arguments or "{}"))
            messages.append(openai.ChatMessage(role="assistant", content=None, tool_calls=[call],
                                               reasoning_content="".join(thought) or None))
            thought = []
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
        parallel_tool_calls=body.parallel_tool_calls, prompt_cache_key=f"response:{chain}",
        reasoning_effort=body.reasoning.effort if body.reasoning is not None else None)
    return Prepared(chat, history, chain)


def _output(text: str, thought: str | None, plan: tools.ToolPlan | None, ids: StreamedIds
            ) -> tuple[list[rw.OutputItem], openai.ChatMessage]:
    """The response's output items (a thinking model's reasoning first), and the assistant
    message they add to the conversation."""
    items: list[rw.OutputItem] = []
    if thought is not None:
        items.append(rw.ReasoningItem(id=ids.reasoning, content=[rw.ReasoningText(thought)]))
    parsed = plan.read(text) if plan is not None else None
    if parsed is not None and parsed.calls:
        items += [rw.FunctionCall(id=f"fc_{uuid.uuid4().hex[:24]}", call_id=c.id,
                                  name=c.function.name, arguments=c.function.arguments)
                  for c in parsed.calls]
        return items, openai.ChatMessage(role="assistant", content=None, tool_calls=parsed.calls,
                                         reasoning_content=thought)
    reply = parsed.content if parsed is not None and parsed.content is not None else text
    items.append(rw.OutputMessage(id=ids.message, content=[rw.OutputText(reply)]))
    return items, openai.ChatMessage(role="assistant", content=reply, reasoning_content=thought)


def _response(body: rw.ResponsesRequest, response_id: str, model: str, created: int,
              output: list[rw.OutputItem], finished: Finished | None) -> rw.Response:
    usage: rw.ResponseUsage | msgspec.UnsetType = msgspec.UNSET
    status, incomplete = "in_progress", None
    if finished is not None:
        usage = rw.ResponseUsage(
            input_tokens=finished.prompt_tokens, output_tokens=finished.completion_tokens,
            total_tokens=finished.prompt_tokens + finished.completion_tokens,
            input_tokens_details=rw.InputTokensDetails(finished.cached_tokens),
            output_tokens_details=rw.OutputTokensDetails(finished.reasoning_tokens))
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
        user=body.user if body.user is not None else msgspec.UNSET,
        reasoning=(rw.ReasoningEcho(body.reasoning.effort, body.reasoning.summary)
                   if body.reasoning is not None else msgspec.UNSET))


StreamItem = rw.StreamEvent | LoadingNotice | QueueNotice  # notices: none asked for


async def respond(registry: ModelRegistry, store: ResponseStore, body: rw.ResponsesRequest,
                  client: str) -> rw.Response | Streamed[StreamItem]:
    served = registry.get(body.model)
    return await serve(served, body.stream, lambda: _answer(served, store, body, client),
                       error_event)


async def _answer(served: ServedModel, store: ResponseStore, body: rw.ResponsesRequest,
                  client: str) -> rw.Response | Streamed[StreamItem]:
    response_id, created = f"resp_{uuid.uuid4().hex}", int(time.time())
    prepared = prepare(store, body, response_id, client)
    request, plan = await built(build_chat_request, served, prepared.chat, None, client)
    thinking = thinking_of(request, wants_raw(prepared.chat, served.config))
    events = then_next_turn(await started(served, request, "responses"), served, prepared.chat,
                            request, thinking, plan)

    def finish(text: str, thought: str | None, finished: Finished,
               ids: StreamedIds) -> rw.Response:
        output, said = _output(text, thought, plan, ids)
        if body.store:
            store.put(response_id, client, prepared.chain, [*prepared.history, said])
        return _response(body, response_id, served.id, created, output, finished)

    if body.stream:
        start = _response(body, response_id, served.id, created, [], None)
        renderer = ResponseEvents(start, finish, plan is not None, thinking)
        return Streamed(rendered(events, renderer, notices=False))
    text, finished = await collect(events)
    thought, text = thinking.split(text) if thinking is not None else (None, text)
    return finish(text, thought, finished, StreamedIds())
