"""HTTP routes: OpenAI's models, chat and text completions, and health; each under /v1 and bare.

Thin: decode the body, hand it to serving, render the result (JSON, or SSE frames when streamed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response, get, post
from litestar.response import Stream

from gateway.api import schemas as wire
from gateway.api.body import decode_body
from gateway.api.sse import HEADERS, frames
from gateway.engine.async_client import generate
from gateway.errors import ClientGone
from gateway.serving import responses
from gateway.serving.model_registry import ModelRegistry, ServedModel
from gateway.serving.request_builder import build_chat_request, build_completion_request

SESSION_HEADER = "x-session-id"
T = TypeVar("T")


def _json(obj: Any, status: int = 200) -> Response[bytes]:
    return Response(msgspec.json.encode(obj), status_code=status, media_type="application/json")


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.registry  # type: ignore[no-any-return]


def _card(request: Request, served: ServedModel) -> wire.ModelCard:
    status = served.describe(show_processes=bool(request.scope.get("gateway.admin", False)))
    return wire.ModelCard(id=served.id, created=served.created, status=status)


@get(["/v1/models", "/models"], sync_to_thread=False)
def list_models(request: Request) -> Response[bytes]:
    return _json(wire.ModelList(data=[_card(request, m) for m in _registry(request).models]))


@get(["/v1/models/{model_id:str}", "/models/{model_id:str}"], sync_to_thread=False)
def get_model(request: Request, model_id: str) -> Response[bytes]:
    return _json(_card(request, _registry(request).get(model_id)))


@get("/health", sync_to_thread=False)
def health(request: Request) -> Response[bytes]:
    """200 when every model that should serve is ready; 503 otherwise, saying why."""
    status, body = _registry(request).health(show_processes=bool(request.scope.get("gateway.admin", False)))
    return _json(body, status)


async def _until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work` unless the client hangs up first: then it is cancelled (which cancels the
    generation in its engine) and `ClientGone` is raised. Litestar does not cancel a handler
    whose client went away; this watches the connection for it."""
    task = asyncio.ensure_future(work)

    async def hung_up() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

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


async def _run(request: Request, body: wire.ChatCompletionRequest | wire.CompletionRequest
               ) -> Response[bytes] | Stream:
    served = _registry(request).get(body.model)
    header = request.headers.get(SESSION_HEADER)
    client: str = request.scope.get("gateway.client", "")  # type: ignore[assignment]
    served.require_ready()
    # rendering and tokenizing a large prompt takes a while: off the event loop, so every other
    # stream and /health go on meanwhile
    if isinstance(body, wire.ChatCompletionRequest):
        gen = await asyncio.to_thread(build_chat_request, served, body, header, client)
        ids = responses.ResponseIds(model=served.id, prefix="chatcmpl")
    else:
        gen = await asyncio.to_thread(build_completion_request, served, body, header, client)
        ids = responses.ResponseIds(model=served.id, prefix="cmpl")
    replica = served.pick(gen)
    events = await responses.accepted(generate(replica, gen))
    chat = isinstance(body, wire.ChatCompletionRequest)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        to_chunks = responses.chat_chunks if chat else responses.completion_chunks
        return Stream(frames(to_chunks(ids, events, include_usage)), media_type="text/event-stream",
                      headers=HEADERS)
    text, finished = await _until_disconnected(request, responses.collect(events))
    make = responses.chat_completion if chat else responses.text_completion
    return _json(make(ids, text, finished))


@post(["/v1/chat/completions", "/chat/completions"], status_code=200)
async def chat_completions(request: Request) -> Response[bytes] | Stream:
    return await _run(request, decode_body(await request.body(), wire.ChatCompletionRequest))


@post(["/v1/completions", "/completions"], status_code=200)
async def completions(request: Request) -> Response[bytes] | Stream:
    return await _run(request, decode_body(await request.body(), wire.CompletionRequest))


@post("/admin/models/{model_id:str}/load", status_code=200)
async def load_model(request: Request, model_id: str) -> Response[bytes]:
    served = _registry(request).get(model_id)
    served.load()
    return _json({"id": served.id, **served.describe(show_processes=True)})


@post("/admin/models/{model_id:str}/unload", status_code=200)
async def unload_model(request: Request, model_id: str) -> Response[bytes]:
    served = _registry(request).get(model_id)
    await served.unload()
    return _json({"id": served.id, **served.describe(show_processes=True)})


ROUTES = [list_models, get_model, health, chat_completions, completions, load_model, unload_model]
