"""HTTP routes: OpenAI's models, chat and text completions, and health; each under /v1 and bare.

Thin: decode the body, one call into serving, encode the result (JSON, or SSE frames when streamed).
Never imports the engine.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.response import Stream

from gateway import responses_wire, wire
from gateway.api.body import decode_body
from gateway.api.sse import HEADERS, frames, typed_events
from gateway.serving import completions as serving
from gateway.serving import embeddings as embedding_serving
from gateway.serving import model_status, responses_api
from gateway.serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.serving.model_registry import ModelRegistry, ServedModel

SESSION_HEADER = "x-session-id"


def json_response(obj: Any, status: int = 200) -> Response[bytes]:
    return Response(msgspec.json.encode(obj), status_code=status, media_type="application/json")


def registry_of(request: Request) -> ModelRegistry:
    return request.app.state.registry  # type: ignore[no-any-return]


def _card(request: Request, served: ServedModel) -> wire.ModelCard:
    status = model_status.describe(served, show_processes=bool(request.scope.get("gateway.admin", False)))
    return wire.ModelCard(id=served.id, created=served.created, status=status)


@get(["/v1/models", "/models"], sync_to_thread=False)
def list_models(request: Request) -> Response[bytes]:
    return json_response(wire.ModelList(data=[_card(request, m) for m in registry_of(request).models]))


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
    return json_response(body, status)


async def hung_up_on(request: Request) -> None:
    """Resolves when the client closes the connection."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _run(request: Request, body: wire.ChatCompletionRequest | wire.CompletionRequest
               ) -> Response[bytes] | Stream:
    client: str = request.scope.get("gateway.client", "")  # type: ignore[assignment]
    result = await serving.complete(registry_of(request), body, request.headers.get(SESSION_HEADER),
                                    client, hung_up=lambda: hung_up_on(request))
    if isinstance(result, serving.Streamed):
        return Stream(frames(result.items), media_type="text/event-stream", headers=HEADERS)
    return json_response(result)


@get("/metrics", sync_to_thread=False)
def metrics(request: Request) -> Response[bytes]:
    """Prometheus metrics (requests, latencies by class, tokens, slots, engine counters)."""
    return Response(registry_of(request).metrics.render(), media_type=METRICS_CONTENT_TYPE)


@post(["/v1/chat/completions", "/chat/completions"], status_code=200)
async def chat_completions(request: Request) -> Response[bytes] | Stream:
    return await _run(request, decode_body(await request.body(), wire.ChatCompletionRequest))


@post(["/v1/completions", "/completions"], status_code=200)
async def completions(request: Request) -> Response[bytes] | Stream:
    return await _run(request, decode_body(await request.body(), wire.CompletionRequest))


@post(["/v1/embeddings", "/embeddings"], status_code=200)
async def embeddings(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), wire.EmbeddingRequest)
    client: str = request.scope.get("gateway.client", "")  # type: ignore[assignment]
    return json_response(await embedding_serving.embed(registry_of(request), body, client))


@post(["/v1/responses", "/responses"], status_code=200)
async def create_response(request: Request) -> Response[bytes] | Stream:
    body = decode_body(await request.body(), responses_wire.ResponsesRequest)
    client: str = request.scope.get("gateway.client", "")  # type: ignore[assignment]
    result = await responses_api.respond(registry_of(request), request.app.state.responses, body,
                                         client, hung_up=lambda: hung_up_on(request))
    if isinstance(result, responses_api.StreamedResponse):
        return Stream(typed_events(result.events), media_type="text/event-stream", headers=HEADERS)
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
