"""What each engine failure is in HTTP: status, OpenAI error `type`, `code`, `Retry-After`. The one
table; the engine itself never speaks HTTP. Used for plain error responses (before a stream starts)
and for the one error frame of a stream that fails later, which therefore say the same thing.
"""

from __future__ import annotations

from gateway import wire
from gateway.engine.types import Failed, FailureKind
from gateway.errors import GatewayError

SERVER = "server_error"

# kind -> (HTTP status, OpenAI error type, code)
HTTP: dict[FailureKind, tuple[int, str, str | None]] = {
    FailureKind.QUEUE_FULL: (429, "rate_limit_error", "queue_full"),
    FailureKind.QUEUE_TIMEOUT: (503, SERVER, "queue_timeout"),
    FailureKind.SHUTTING_DOWN: (503, SERVER, "shutting_down"),
    FailureKind.DECODE_FAILED: (500, SERVER, "decode_failed"),
    FailureKind.GRAMMAR_STUCK: (500, SERVER, "grammar_stuck"),
    FailureKind.INTERNAL: (500, SERVER, None),
    FailureKind.ENGINE_STOPPED: (503, SERVER, "engine_restarting"),
    FailureKind.NOT_READY: (503, SERVER, "model_not_ready"),
    FailureKind.MODEL_FAILED: (503, SERVER, "model_failed"),
    FailureKind.UNLOADED: (503, SERVER, "model_unloaded"),
}


class EngineFailure(GatewayError):
    """An engine failure raised before any byte was sent: a plain HTTP error."""

    def __init__(self, failed: Failed) -> None:
        status, type_, code = HTTP[failed.kind]
        super().__init__(failed.message, code=code)
        self.status = status
        self.type = type_
        if failed.retry_after is not None:
            self.headers = {"Retry-After": str(failed.retry_after)}


def error_frame(failed: Failed) -> wire.ErrorResponse:
    """The error frame of a stream that fails after it started."""
    _status, type_, code = HTTP[failed.kind]
    return wire.error_response(failed.message, type_, code)
