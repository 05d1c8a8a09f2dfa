"""The `GatewayError` family: errors as data (status, OpenAI `type`, `code`, `param`).

Raised anywhere below the web layer; rendered once, by the API's exception handler, into
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    headers: dict[str, str] = {}


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"


class ModelNotFound(NotFound):
    code = "model_not_found"


class ClientGone(GatewayError):
    """The client hung up; nobody reads this (499, nginx's 'client closed request')."""

    status = 499
    type = "invalid_request_error"
    code = "client_closed_request"


class Unavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, code=code)
        self.headers = {"Retry-After": str(retry_after)}
