"""Renders every error in the shape of the protocol its route speaks (OpenAI's `{"error":
{"message", "type", "param", "code"}}`, Anthropic's, Ollama's) with the right status.

`GatewayError`s carry their own status and code; litestar's own HTTP errors (unknown route, wrong
method) keep their status; anything else is a 500 whose body never contains a traceback.
"""

from __future__ import annotations

import logging

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from gateway.errors import INVALID, SERVER, GatewayError
from gateway.frontend.error_frames import error_body

log = logging.getLogger(__name__)


def error_of(status: int, message: str, type_: str, code: str | None = None) -> GatewayError:
    error = GatewayError(message, code=code)
    error.status, error.type = status, type_
    return error


def handle_gateway_error(request: Request, exc: GatewayError) -> Response[bytes]:
    """The one rendering of an error, in its route's protocol."""
    return Response(msgspec.json.encode(error_body(request.url.path, exc)), status_code=exc.status,
                    media_type="application/json", headers=exc.headers or None)


def handle_http_exception(request: Request, exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if status == 404:
        return handle_gateway_error(request, error_of(404, "Not found: no such route", INVALID,
                                                      "not_found"))
    if status == 405:
        return handle_gateway_error(request, error_of(405, "Method not allowed on this route",
                                                      INVALID))
    if status >= 500:
        return handle_unexpected(request, exc)
    return handle_gateway_error(request, error_of(status, str(exc.detail), INVALID))


def handle_unexpected(request: Request, exc: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return handle_gateway_error(request, error_of(500, "Internal server error", SERVER))


EXCEPTION_HANDLERS = {
    GatewayError: handle_gateway_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
