"""llama.cpp's own routes (what llama.vscode, llama.vim and llama.cpp-speaking tools call):
`POST /infill`, `POST /completion`, `POST /tokenize`, `POST /detokenize`, `GET /props`.

Thin, as `routes`: decode the body, one call into `serving.native`, encode the result (JSON, or
`data:` frames with no `[DONE]`, as llama-server streams them). Never imports the engine.
"""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.response import Stream

from gateway import llama_wire as native
from gateway.api.body import decode_body
from gateway.api.routes import hung_up_on, json_response, registry_of
from gateway.api.sse import HEADERS, frames
from gateway.serving import native as serving


async def _run(request: Request, body: native.InfillRequest | native.CompletionNativeRequest
               ) -> Response[bytes] | Stream:
    client: str = request.scope.get("gateway.client", "")  # type: ignore[assignment]
    result = await serving.complete_native(registry_of(request), body, client,
                                           hung_up=lambda: hung_up_on(request))
    if isinstance(result, serving.NativeStreamed):
        return Stream(frames(result.items, done=False), media_type="text/event-stream",
                      headers=HEADERS)
    return json_response(result)


@post("/infill", status_code=200)
async def infill(request: Request) -> Response[bytes] | Stream:
    return await _run(request, decode_body(await request.body(), native.InfillRequest))


@post("/completion", status_code=200)
async def completion(request: Request) -> Response[bytes] | Stream:
    return await _run(request, decode_body(await request.body(), native.CompletionNativeRequest))


@post("/tokenize", status_code=200)
async def tokenize(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), native.TokenizeRequest)
    return json_response(await serving.tokenize(registry_of(request), body))


@post("/detokenize", status_code=200)
async def detokenize(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), native.DetokenizeRequest)
    return json_response(await serving.detokenize(registry_of(request), body))


@get("/props")
async def props(request: Request, model: str | None = None) -> Response[bytes]:
    return json_response(await serving.props(registry_of(request), model))


NATIVE_ROUTES = [infill, completion, tokenize, detokenize, props]
