"""HTTP routes: OpenAI's models, chat and text completions, and health; each under /v1 and bare.

Thin: decode the body, one call into the frontend (cancelled when the client hangs up), encode
the result (JSON, or SSE frames when streamed).
Never imports the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response, get, post
from litestar.response import Stream

from gateway.api.body import decode_body
from gateway.api.sse import HEADERS, frames, typed_events
from gateway.errors import ClientGone
from gateway.fleet import status as model_status
from gateway.fleet.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.fleet.registry import ModelRegistry
from gateway.fleet.served_model import ServedModel
from gateway.frontend.endpoint import Streamed
from gateway.frontend.endpoints import completions as completion_endpoint
from gateway.frontend.endpoints import embeddings as embedding_endpoint
from gateway.frontend.endpoints import responses_api
from gateway.protocol import openai
from gateway.protocol import responses as responses_protocol

SESSION_HEADER = "x-session-id"
T = TypeVar("T")


def json_response(obj: Any, status: int = 200) -> Response[bytes]:
    return Response(msgspec.json.encode(obj), status_code=status, media_type="application/json")


def registry_of(request: Request) -> ModelRegistry:
    return request.app.state.registry  # type: ignore[no-any-return]


def _card(request: Request, served: ServedModel) -> openai.ModelCard:
    status = model_status.describe(served, show_processes=bool(request.scope.get("gateway.admin", False)))
    return openai.ModelCard(id=served.id, created=served.created, status=status)


@get(["/v1/models", "/models"], sync_to_thread=False)
def list_models(request: Request) -> Response[bytes]:
    return json_response(openai.ModelList(data=[_card(request, m) for m in registry_of(request).models]))


@get(["/v1/models/{model_id:str}", "/models/{model_id:str}"], sync_to_thread=False)
def get_model(request: Request, model_id: str) -> Response[bytes]:
    return json_response(_card(request, registry_of(request).get(model_id)))


@get("/health", sync_to_thread=False)
def health(request: Request) -> Response[bytes]:
    """200 when every model that should serve is ready; 503 otherwise, saying why (to a caller
    without a key, when keys are on, only the status: no models, GPUs or counts)."""
    admin = bool(request.scope.get("gateway.admin", False))
    status, body = model_status.health(registry_of(request), show_processes=admin)
    if not request.scope.get("gateway.trusted", False):
        body = {"status": body["status"]}
    else:  # what the caller may do (the page shows the admin actions only to an admin)
        body["caller"] = {"admin": admin}
    return json_response(body, status)


def client_of(request: Request) -> str:
    """Who is asking (an API key's id, or the address without keys): the guard's word."""
    return str(request.scope.get("gateway.client", ""))


async def _hung_up(request: Request) -> None:
    """Resolves when the client closes the connection."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def until_hung_up(request: Request, work: Awaitable[T]) -> T:
    """`work` (one endpoint call), cancelled if the client hangs up first (litestar does not
    cancel a handler for it): the generation stops in its engine and `ClientGone` is raised.
    The one place cancellation is handled; a stream, once returned, ends when its reader does."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_hung_up(request))
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


async def _run(request: Request, body: openai.ChatCompletionRequest | openai.CompletionRequest
               ) -> Response[bytes] | Stream:
    result = await until_hung_up(request, completion_endpoint.complete(
        registry_of(request), body, request.headers.get(SESSION_HEADER), client_of(request)))
    if isinstance(result, Streamed):
        return Stream(frames(result.items), media_type="text/event-stream", headers=HEADERS)
    return json_response(result)


@get("/metrics", sync_to_thread=False)
def metrics(request: Request) -> Response[bytes]:
    """Prometheus metrics (requests, latencies by class, tokens, slots, engine counters)."""
    return Response(registry_of(request).metrics.render(), media_type=METRICS_CONTENT_TYPE)


@post(["/v1/chat/completions", "/chat/completions"], status_code=200)
async def chat_completions(request: Request) -> Response[bytes] | Stream:
    return await _run(request, decode_body(await request.body(), openai.ChatCompletionRequest))


@post(["/v1/completions", "/completions"], status_code=200)
async def completions(request: Request) -> Response[bytes] | Stream:
    return await _run(request, decode_body(await request.body(), openai.CompletionRequest))


@post(["/v1/embeddings", "/embeddings"], status_code=200)
async def embeddings(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), openai.EmbeddingRequest)
    return json_response(await until_hung_up(request, embedding_endpoint.embed(
        registry_of(request), body, client_of(request))))


@post(["/v1/responses", "/responses"], status_code=200)
async def create_response(request: Request) -> Response[bytes] | Stream:
    body = decode_body(await request.body(), responses_protocol.ResponsesRequest)
    result = await until_hung_up(request, responses_api.respond(
        registry_of(request), request.app.state.responses, body, client_of(request)))
    if isinstance(result, Streamed):
        return Stream(typed_events(result.items), media_type="text/event-stream", headers=HEADERS)
    return json_response(result)


@post("/admin/models/{model_id:str}/load", status_code=200)
async def load_model(request: Request, model_id: str) -> Response[bytes]:
    served = registry_of(request).get(model_id)
    served.load()
    return json_response({"id": served.id, **model_status.describe(served, show_processes=True)})


@post("/admin/models/{model_id:str}/unload", status_code=200)
async def unload_model(request: Request, model_id: str) -> Response[bytes]:
    served = registry_of(request).get(model_id)
    await served.unload()
    return json_response({"id": served.id, **model_status.describe(served, show_processes=True)})


ROUTES = [list_models, get_model, health, metrics, chat_completions, completions, embeddings,
          create_response, load_model, unload_model]
