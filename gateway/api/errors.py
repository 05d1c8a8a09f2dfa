"""Renders every error as `{"error": {"message", "type", "param", "code"}}` with the right status.

`GatewayError`s carry their own status and code; litestar's own HTTP errors (unknown route, wrong
method) keep their status; anything else is a 500 whose body never contains a traceback.
"""

from __future__ import annotations

import logging

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from gateway.errors import GatewayError
from gateway.frontend.error_frames import openai_error

log = logging.getLogger(__name__)

def error_response(
    status: int, message: str, type_: str, param: str | None = None, code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    error = GatewayError(message, param=param, code=code)
    error.status, error.type = status, type_
    if headers:
        error.headers = headers
    return handle_gateway_error(None, error)


def handle_gateway_error(_request: Request | None, exc: GatewayError) -> Response[bytes]:
    """The one rendering of an error on OpenAI's (and llama.cpp's) routes."""
    return Response(msgspec.json.encode(openai_error(exc)), status_code=exc.status,
                    media_type="application/json", headers=exc.headers or None)


def handle_http_exception(_request: Request, exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    if status == 404:
        return error_response(404, "Not found: no such route", "invalid_request_error", code="not_found")
    if status == 405:
        return error_response(405, "Method not allowed on this route", "invalid_request_error")
    if status >= 500:
        return handle_unexpected(_request, exc)
    return error_response(status, str(exc.detail), "invalid_request_error")


def handle_unexpected(request: Request, exc: Exception) -> Response[bytes]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal server error", "server_error")


EXCEPTION_HANDLERS = {
    GatewayError: handle_gateway_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
