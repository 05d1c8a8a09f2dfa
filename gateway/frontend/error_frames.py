"""A `GatewayError` in each protocol's error shape: the body of an HTTP error and the error frame
of a stream that fails after it started say the same thing (status, type and code come from
`gateway.errors`' one table)."""

from __future__ import annotations

from gateway.errors import GatewayError
from gateway.protocol import anthropic, openai


def openai_error(error: GatewayError) -> openai.ErrorResponse:
    """`{"error": {"message", "type", "param", "code"}}`: OpenAI's routes and llama.cpp's."""
    return openai.error_response(error.message, error.type, error.code, error.param)


# Anthropic's error types by HTTP status (its documented set); anything else is an api_error
ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                   403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                   415: "invalid_request_error", 429: "rate_limit_error", 499: "invalid_request_error",
                   503: "overloaded_error"}


def anthropic_error(error: GatewayError) -> anthropic.ErrorResponse:
    """`{"type": "error", "error": {"type", "message"}}`: the Messages API's."""
    return anthropic.ErrorResponse(anthropic.ErrorBody(
        ANTHROPIC_TYPES.get(error.status, "api_error"), error.message))


def ollama_error(error: GatewayError) -> dict[str, str]:
    """`{"error": "..."}`: Ollama's."""
    return {"error": error.message}


def error_body(path: str, error: GatewayError) -> object:
    """The error in the shape of the protocol `path` belongs to."""
    if path.startswith(("/v1/messages", "/messages")):
        return anthropic_error(error)
    if path.startswith("/api/"):
        return ollama_error(error)
    return openai_error(error)
