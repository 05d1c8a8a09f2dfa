"""Errors render in OpenAI's shape; an unexpected exception is a 500 without its traceback."""

from litestar import Litestar, get
from litestar.testing import TestClient

from gateway.api.errors import EXCEPTION_HANDLERS
from gateway.errors import Unavailable


@get("/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("secret internal detail")


@get("/busy", sync_to_thread=False)
def busy() -> None:
    raise Unavailable("loading", code="model_not_ready", retry_after=7)


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
