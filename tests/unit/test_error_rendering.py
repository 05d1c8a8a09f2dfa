"""Errors render in OpenAI's shape; an unexpected exception is a 500 without its traceback."""

from litestar import Litestar, get
from litestar.testing import TestClient

from gateway.api.errors import EXCEPTION_HANDLERS
from gateway.engine.events import FailureKind
from gateway.errors import OF_ENGINE, Failure, ServiceFailure
from gateway.frontend.endpoints.response_events import error_event
from gateway.frontend.error_frames import openai_error


@get("/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("secret internal detail")


@get("/busy", sync_to_thread=False)
def busy() -> None:
    raise ServiceFailure(Failure.MODEL_NOT_READY, "loading", retry_after=7)


def client() -> TestClient:
    return TestClient(Litestar([boom, busy], exception_handlers=EXCEPTION_HANDLERS, debug=False,
                               logging_config=None))


def test_unexpected_error_is_500_without_traceback() -> None:
    with client() as c:
        r = c.get("/boom")
    assert r.status_code == 500
    error = r.json()["error"]
    assert error == {"message": "Internal server error", "type": "server_error", "param": None,
                     "code": None}
    assert "secret" not in r.text and "Traceback" not in r.text


def test_gateway_error_keeps_status_code_and_headers() -> None:
    with client() as c:
        r = c.get("/busy")
    assert r.status_code == 503 and r.headers["retry-after"] == "7"
    assert r.json()["error"]["code"] == "model_not_ready"


def test_every_engine_failure_has_one_row_in_the_table() -> None:
    assert set(OF_ENGINE) == set(FailureKind)
    assert len(set(OF_ENGINE.values())) == len(FailureKind)  # no two engine words mean one row


def test_a_failure_reads_the_same_on_every_protocol() -> None:
    """An engine that died mid-stream: the chat stream's frame, the Responses stream's error
    event and the plain HTTP error all carry the code the table gives it."""
    died = ServiceFailure(Failure.ENGINE_RESTARTING, "the engine process stopped")
    assert openai_error(died).error.code == "engine_restarting"
    assert error_event(died).code == "engine_restarting"
    assert died.status == 503 and died.headers == {"Retry-After": "2"}
