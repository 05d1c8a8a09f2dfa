"""llama.cpp's own routes (what llama.vscode, llama.vim and llama.cpp-speaking tools call):
`POST /infill`, `POST /completion`, `POST /tokenize`, `POST /detokenize`, `POST /apply-template`, `GET /props`.

Thin, as `routes`: decode the body, one call into `frontend.endpoints.llama_server`, encode the result (JSON, or
`data:` frames with no `[DONE]`, as llama-server streams them). Never imports the engine.
"""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.response import Stream

from gateway.protocol import llama, openai
from gateway.api.body import decode_body
from gateway.api.routes import client_of, json_response, registry_of, until_hung_up
from gateway.api.sse import HEADERS, frames
from gateway.frontend.endpoint import Streamed
from gateway.frontend.endpoints import llama_server


async def _run(request: Request, body: llama.InfillRequest | llama.CompletionNativeRequest
               ) -> Response[bytes] | Stream:
    result = await until_hung_up(request, llama_server.complete_native(
        registry_of(request), body, client_of(request)))
    if isinstance(result, Streamed):
        return Stream(frames(result.items, done=False), media_type="text/event-stream",
                      headers=HEADERS)
    return json_response(result)


@post("/infill", status_code=200)
async def infill(request: Request) -> Response[bytes] | Stream:
    return await _run(request, decode_body(await request.body(), llama.InfillRequest))


@post("/completion", status_code=200)
async def completion(request: Request) -> Response[bytes] | Stream:
    return await _run(request, decode_body(await request.body(), llama.CompletionNativeRequest))


@post("/tokenize", status_code=200)
async def tokenize(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), llama.TokenizeRequest)
    return json_response(await llama_server.tokenize(registry_of(request), body))


@post("/detokenize", status_code=200)
async def detokenize(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), llama.DetokenizeRequest)
    return json_response(await llama_server.detokenize(registry_of(request), body))


@post("/apply-template", status_code=200)
async def apply_template(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), openai.ChatCompletionRequest)
    return json_response(await llama_server.apply_template(registry_of(request), body))


@get("/props")
async def props(request: Request, model: str | None = None) -> Response[bytes]:
    return json_response(await llama_server.props(registry_of(request), model))


NATIVE_ROUTES = [infill, completion, tokenize, detokenize, apply_template, props]
