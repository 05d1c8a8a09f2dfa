"""A thinking conversation's next turn, begun while its user reads the answer.

Most thinking templates drop an answer's thinking when they render it as history, so the next
turn's prompt leaves the conversation's KV where this answer's thinking began: without help the
next turn computes the whole answer again before its first token. Once a thinking answer is
whole, the conversation is rendered with it as history, up to where a next user message would
begin, and the engine computes that prefix in the background (a prompt-only request that yields
to every other, as a new conversation's would): the next turn computes only its new message. A
conversation whose answer ends in tool calls, or a request for several choices, is left alone.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import msgspec

from gateway.engine.events import EngineEvent, Finished, FinishReason, TextDelta
from gateway.engine.kv.session_key import SessionKey
from gateway.engine.requests import GenerationRequest
from gateway.errors import GatewayError
from gateway.fleet.served_model import ServedModel
from gateway.frontend.endpoint import built, started
from gateway.frontend.prompt.completion_request import chat_prompt
from gateway.frontend.reasoning import Thinking
from gateway.frontend.tools.plan import ToolPlan
from gateway.protocol import openai

log = logging.getLogger(__name__)
ROUTE = "next_turn"  # its label in the access log and /metrics
_NEXT = "Next."  # stands in for the next user message (only what comes before it is kept)
# the next turn being begun, per conversation (unkeyed: per client): a newer request of the
# conversation supersedes it
_begun: dict[tuple[str, SessionKey | None], asyncio.Task[None]] = {}


def next_turn_tokens(served: ServedModel, body: openai.ChatCompletionRequest, reply: str
                     ) -> list[int] | None:
    """The tokens the next turn's prompt starts with, if the template lets them be found."""
    history = [*body.messages, openai.ChatMessage(role="assistant", content=reply),
               openai.ChatMessage(role="user", content=_NEXT)]
    prompt = chat_prompt(served, msgspec.structs.replace(body, messages=history))
    return prompt.tokens[:prompt.last_client] if prompt.last_client else None


def next_turn_request(request: GenerationRequest, tokens: list[int]) -> GenerationRequest:
    return GenerationRequest(request_id=uuid.uuid4().hex, prompt_tokens=tokens, max_tokens=0,
                             session_key=request.session_key, scope=request.scope,
                             background=True)


def then_next_turn(events: AsyncIterator[EngineEvent], served: ServedModel,
                   body: openai.ChatCompletionRequest, request: GenerationRequest,
                   thinking: Thinking | None, plan: ToolPlan | None
                   ) -> AsyncIterator[EngineEvent]:
    """`events` as they come; once they end with a whole thinking answer, its conversation's
    next turn begins in the background. (Any earlier one of the conversation is superseded now:
    this request is that turn.) Other answers' events are given back untouched: no extra step
    on their per-token path."""
    earlier = _begun.pop((request.scope, request.session_key), None)
    if earlier is not None:
        earlier.cancel()
    if thinking is None or (body.n or 1) > 1 or not served.config.reasoning.prefill_next_turn:
        return events
    return _watched(events, served, body, request, thinking, plan)


async def _watched(events: AsyncIterator[EngineEvent], served: ServedModel,
                   body: openai.ChatCompletionRequest, request: GenerationRequest,
                   thinking: Thinking, plan: ToolPlan | None) -> AsyncIterator[EngineEvent]:
    parts: list[str] = []
    async for event in events:
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, Finished) and event.reason in (FinishReason.STOP,
                                                              FinishReason.LENGTH):
            _begin(served, body, request, thinking, plan, "".join(parts))
        yield event


def _begin(served: ServedModel, body: openai.ChatCompletionRequest, request: GenerationRequest,
           thinking: Thinking, plan: ToolPlan | None, text: str) -> None:
    thought, reply = thinking.split(text)
    if thought is None:
        return  # it did not think: the conversation's KV is the next turn's prefix already
    parsed = plan.read(reply) if plan is not None else None
    if parsed is not None and parsed.calls:
        return
    if parsed is not None and parsed.content is not None:
        reply = parsed.content
    task = asyncio.get_running_loop().create_task(_compute(served, body, request, reply))
    conversation = (request.scope, request.session_key)
    _begun[conversation] = task
    task.add_done_callback(lambda done: _begun.pop(conversation, None)
                           if _begun.get(conversation) is done else None)


async def _compute(served: ServedModel, body: openai.ChatCompletionRequest,
                   request: GenerationRequest, reply: str) -> None:
    try:
        tokens = await built(next_turn_tokens, served, body, reply)
        if tokens is None or len(tokens) >= served.n_ctx_seq:
            return
        async for _event in await started(served, next_turn_request(request, tokens), ROUTE):
            pass
    except GatewayError as exc:  # best effort: the next turn computes it then
        log.debug("next turn of %s not begun: %s", served.id, exc.message)
    except Exception:  # a bug here must not reach anyone's answer
        log.exception("next turn of %s not begun", served.id)
