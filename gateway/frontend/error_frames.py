"""A `GatewayError` in each protocol's error shape: the body of an HTTP error and the error frame
of a stream that fails after it started say the same thing (status, type and code come from
`gateway.errors`' one table)."""

from __future__ import annotations

from gateway.errors import GatewayError
from gateway.protocol import openai


def openai_error(error: GatewayError) -> openai.ErrorResponse:
    """`{"error": {"message", "type", "param", "code"}}`: OpenAI's routes and llama.cpp's."""
    return openai.error_response(error.message, error.type, error.code, error.param)
