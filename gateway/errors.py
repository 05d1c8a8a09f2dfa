"""The `GatewayError` family (errors as data: status, OpenAI `type`, `code`, `param`) and the one
table of failures: every way a valid request can fail to be served, wherever it is decided (the
engine: a full queue, a decode error; the fleet: a model that failed, an engine that died), with
what it is in HTTP (status, type, code, `Retry-After`).

Raised anywhere below the web layer; each protocol renders a `GatewayError` once, the same way
before a stream starts (an HTTP error) and after (its stream's error frame), so a failure reads
the same on every route.
"""

from __future__ import annotations

import enum

from gateway.engine.events import Failed, FailureKind

SERVER = "server_error"
INVALID = "invalid_request_error"


class GatewayError(Exception):
    status: int = 500
    type: str = SERVER
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
    type = INVALID


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class NotFound(GatewayError):
    status = 404
    type = INVALID


class ModelNotFound(NotFound):
    code = "model_not_found"


class ClientGone(GatewayError):
    """The client hung up; nobody reads this (499, nginx's 'client closed request')."""

    status = 499
    type = INVALID
    code = "client_closed_request"


class Failure(enum.Enum):
    """(HTTP status, OpenAI error type, code, default Retry-After seconds) of each failure."""

    QUEUE_FULL = (429, "rate_limit_error", "queue_full", None)  # too many wait: try later
    CLIENT_QUOTA = (429, "rate_limit_error", "too_many_requests_for_client", 1)
    QUEUE_TIMEOUT = (503, SERVER, "queue_timeout", None)  # it waited past queue_timeout_s
    SHUTTING_DOWN = (503, SERVER, "shutting_down", None)  # the engine or the server stops
    DECODE_FAILED = (500, SERVER, "decode_failed", None)  # llama_decode failed for its batch
    GRAMMAR_STUCK = (500, SERVER, "grammar_stuck", None)  # the format allows no next token
    INTERNAL = (500, SERVER, None, None)  # a bug: the server survived it, the request did not
    ENGINE_RESTARTING = (503, SERVER, "engine_restarting", 2)  # its engine process died
    MODEL_NOT_READY = (503, SERVER, "model_not_ready", 2)  # still loading
    MODEL_FAILED = (503, SERVER, "model_failed", 60)  # it failed to load, or kept dying
    MODEL_UNLOADED = (503, SERVER, "model_unloaded", 60)  # the admin unloaded it
    NO_GPU_ROOM = (503, SERVER, "insufficient_gpu_memory", 30)  # cannot wake: the others are busy

    def __init__(self, status: int, type_: str, code: str | None, retry_after: int | None) -> None:
        self.status = status
        self.type = type_
        self.code = code
        self.retry_after = retry_after


# the engine's own words for why it failed a request, in the table's
OF_ENGINE: dict[FailureKind, Failure] = {
    FailureKind.QUEUE_FULL: Failure.QUEUE_FULL,
    FailureKind.QUEUE_TIMEOUT: Failure.QUEUE_TIMEOUT,
    FailureKind.SHUTTING_DOWN: Failure.SHUTTING_DOWN,
    FailureKind.DECODE_FAILED: Failure.DECODE_FAILED,
    FailureKind.GRAMMAR_STUCK: Failure.GRAMMAR_STUCK,
    FailureKind.INTERNAL: Failure.INTERNAL,
}


class ServiceFailure(GatewayError):
    """A valid request that could not be served: one row of `Failure`."""

    def __init__(self, failure: Failure, message: str, retry_after: int | None = None) -> None:
        super().__init__(message, code=failure.code)
        self.failure = failure
        self.status = failure.status
        self.type = failure.type
        self.code = failure.code
        self.retry_after = failure.retry_after if retry_after is None else retry_after
        self.headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}

    def again(self) -> ServiceFailure:
        """The same failure as a new exception (one per request it ends: never one object
        raised in many tasks)."""
        return ServiceFailure(self.failure, self.message, self.retry_after)

    @classmethod
    def of(cls, failed: Failed) -> ServiceFailure:
        """The engine's `Failed` event as an error."""
        return cls(OF_ENGINE[failed.kind], failed.message, failed.retry_after)
