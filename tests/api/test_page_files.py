"""The page's files as HTTP serves them (no browser needed): every file the page loads is there
with its media type and headers that keep the page to itself; nothing else of the package is;
the page obeys the Host guard and is open without a key (it holds no data), while what it reads
is not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import RunningServer, model_block, running_server


def test_the_page_and_every_file_it_loads(server: RunningServer) -> None:
    index = httpx.get(server.base + "/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert httpx.get(server.base + "/ui/").text == index.text
    csp = index.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "connect-src 'self'" in csp and "default-src 'none'" in csp
    assert index.headers["x-frame-options"] == "DENY"
    wanted = set(re.findall(r'(?:src|href)="(/ui/[^"]+)"', index.text))
    seen: set[str] = set()
    while wanted - seen:  # the page's files, and the modules they import
        path = sorted(wanted - seen)[0]
        seen.add(path)
        got = httpx.get(server.base + path)
        assert got.status_code == 200, path
        kind = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        assert got.headers["content-type"].startswith(kind[Path(path).suffix]), path
        if path.endswith(".js"):
            assert "innerHTML" not in got.text, path  # server data is only ever text
            wanted |= {"/ui/" + name for name in re.findall(r'from "\./([\w.-]+)"', got.text)}
    assert {"/ui/app.js", "/ui/api.js", "/ui/status.js", "/ui/playground.js"} <= seen


@pytest.mark.parametrize("path", ["/ui/nothing.js", "/ui/__init__.py", "/ui/..%2F__init__.py",
                                  "/ui/.hidden.js", "/ui/static", "/index.html"])
def test_nothing_else_is_served(server: RunningServer, path: str) -> None:
    got = httpx.get(server.base + path)
    assert got.status_code == 404, (path, got.text)
    assert set(got.json()["error"]) >= {"message", "type", "param", "code"}


def test_the_page_obeys_the_host_guard(server: RunningServer) -> None:
    got = httpx.get(server.base + "/", headers={"Host": "evil.example"})
    assert got.status_code == 403 and got.json()["error"]["code"] == "host_not_allowed"


@pytest.fixture(scope="module")
def keyed(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = '[server]\napi_keys = ["alice-key"]\n' + model_block(
        "gemma-3-270m", gemma_path, n_ctx=512, parallel=1, chat_template="gemma", threads=2)
    with running_server(config, tmp_path_factory.mktemp("keyed-files")) as server:
        yield server


def test_with_keys_the_page_is_open_and_what_it_reads_is_not(keyed: RunningServer) -> None:
    assert httpx.get(keyed.base + "/").status_code == 200
    assert httpx.get(keyed.base + "/ui/app.js").status_code == 200
    for path in ("/metrics", "/v1/models"):
        assert httpx.get(keyed.base + path).status_code == 401
    assert httpx.get(keyed.base + "/health").json() == {"status": "ok"}
    user = httpx.get(keyed.base + "/health", headers={"Authorization": "Bearer alice-key"}).json()
    # keys but no admin keys: a key holder on this machine is an admin (as for /admin)
    assert user["caller"] == {"admin": True}
