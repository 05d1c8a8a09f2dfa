"""Anthropic's Messages API (what Claude Code and the Anthropic SDK call): `POST /v1/messages`
and `POST /v1/messages/count_tokens`. `anthropic-version` and `anthropic-beta` are accepted and
not needed; `?beta=true` (Claude Code's) changes nothing. Errors come in Anthropic's shape
(`api.errors` renders by route). Thin, as `routes`."""

from __future__ import annotations

from litestar import Request, Response, post
from litestar.response import Stream

from gateway.api.body import decode_body
from gateway.api.routes import client_of, json_response, registry_of, until_hung_up
from gateway.api.sse import HEADERS, typed_events
from gateway.frontend.endpoint import Streamed
from gateway.frontend.endpoints import anthropic_messages
from gateway.protocol import anthropic


@post(["/v1/messages", "/messages"], status_code=200)
async def create_message(request: Request) -> Response[bytes] | Stream:
    body = decode_body(await request.body(), anthropic.MessagesRequest)
    result = await until_hung_up(request, anthropic_messages.create_message(
        registry_of(request), body, client_of(request)))
    if isinstance(result, Streamed):
        return Stream(typed_events(result.items), media_type="text/event-stream", headers=HEADERS)
    return json_response(result)


@post(["/v1/messages/count_tokens", "/messages/count_tokens"], status_code=200)
async def count_tokens(request: Request) -> Response[bytes]:
    body = decode_body(await request.body(), anthropic.CountTokensRequest)
    return json_response(await until_hung_up(request, anthropic_messages.count_tokens(
        registry_of(request), body, client_of(request))))


ANTHROPIC_ROUTES = [create_message, count_tokens]
