"""Ollama's API (what Open WebUI's Ollama connection, Home Assistant's Ollama integration and the
`ollama` package call): `/api/version`, `/api/tags`, `/api/ps`, `/api/show`, `/api/chat`,
`/api/generate` (NDJSON streams by default), `/api/embed`, `/api/embeddings`; the model-file
routes answer that models come from the config. Errors in Ollama's shape (`api.errors` renders
by route). Thin, as `routes`."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.response import Stream

from gateway.api.body import decode_body
from gateway.api.routes import client_of, json_response, registry_of, until_hung_up
from gateway.api.sse import ndjson_lines
from gateway.frontend.endpoint import Streamed
from gateway.frontend.endpoints import ollama_api, ollama_models
from gateway.protocol import ollama

NDJSON = "application/x-ndjson"


def _answer(result: Any) -> Response[bytes] | Stream:
    if isinstance(result, Streamed):
        return Stream(ndjson_lines(result.items), media_type=NDJSON,
                      headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    return json_response(result)


@get("/api/version", sync_to_thread=False)
def version() -> Response[bytes]:
    return json_response(ollama_models.version())


@get("/api/tags", sync_to_thread=False)
def tags(request: Request) -> Response[bytes]:
    return json_response(ollama_models.tags(registry_of(request)))


@get("/api/ps", sync_to_thread=False)
def ps(request: Request) -> Response[bytes]:
    return json_response(ollama_models.ps(registry_of(request)))


@post("/api/show", status_code=200)
async def show(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), ollama.ShowRequest)
    return json_response(await ollama_models.show(registry_of(request), body))


@post("/api/chat", status_code=200)
async def chat(request: Request) -> Response[bytes] | Stream:
    body = decode_body(await request.body(), ollama.ChatRequest)
    return _answer(await until_hung_up(request, ollama_api.chat(registry_of(request), body,
                                                                client_of(request))))


@post("/api/generate", status_code=200)
async def generate(request: Request) -> Response[bytes] | Stream:
    body = decode_body(await request.body(), ollama.GenerateRequest)
    return _answer(await until_hung_up(request, ollama_api.generate(registry_of(request), body,
                                                                    client_of(request))))


@post("/api/embed", status_code=200)
async def embed(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), ollama.EmbedRequest)
    return json_response(await until_hung_up(request, ollama_api.embed_texts(
        registry_of(request), body, client_of(request))))


@post("/api/embeddings", status_code=200)
async def embeddings(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), ollama.EmbeddingsRequest)
    return json_response(await until_hung_up(request, ollama_api.embed_prompt(
        registry_of(request), body, client_of(request))))


@post("/api/pull", status_code=200)
async def pull(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), ollama.ShowRequest)
    return json_response(ollama_models.pull(registry_of(request), body.model or body.name))


@post(["/api/push", "/api/create", "/api/copy"], status_code=200)
async def manage(request: Request) -> Response[bytes]:
    raise ollama_models.refused(request.url.path.rsplit("/", 1)[-1])


@delete("/api/delete", status_code=200)
async def remove(request: Request) -> Response[bytes]:
    raise ollama_models.refused("delete")


OLLAMA_ROUTES = [version, tags, ps, show, chat, generate, embed, embeddings, pull, manage, remove]
