"""Keystroke traffic, as an editor plugin makes it: each pause in typing sends /infill for the
text so far and abandons the request before (the socket closes). Abandoned requests stop and free
their slots, the last one completes, and the KV computed along the way is reused."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import RunningServer, model_block, running_server
from tests.tiny_model import write_tiny_gguf

CODER = "tiny-coder"
SOURCE = ("def total_price(items):\n    total = 0\n    for item in items:\n"
          "        total += item.price * item.quantity\n    return total\n")
SUFFIX = "\n\nprint(total_price([]))\n"
KEYSTROKES, GAP_S = 20, 0.08


@pytest.fixture(scope="module")
def editor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    path = write_tiny_gguf(tmp_path_factory.mktemp("coder") / "coder.gguf", repo_fim=True)
    config = model_block(CODER, path, n_ctx=2048, parallel=2, threads=1)
    with running_server(config, tmp_path_factory.mktemp("editor")) as server:
        yield server


def infill(prefix: str, stream: bool, n_predict: int = 400) -> dict[str, object]:
    """llama.vim's request (its fields and defaults), for a cursor at the end of `prefix`."""
    return {"input_prefix": prefix, "input_suffix": SUFFIX, "input_extra": [], "prompt": "",
            "n_predict": n_predict, "top_k": 40, "top_p": 0.99, "stream": stream,
            "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
            "t_max_prompt_ms": 5000, "t_max_predict_ms": 5000, "ignore_eos": True,
            "response_fields": ["content", "timings/prompt_n", "timings/predicted_n",
                                "tokens_cached", "truncated"]}


def send(server: RunningServer, body: dict[str, object]) -> socket.socket:
    """Send a request over a bare socket, as curl does, without reading the answer yet."""
    payload = json.dumps(body).encode()
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    conn.sendall(b"POST /infill HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
    return conn


def read_all(conn: socket.socket) -> tuple[int, bytes]:
    data = bytearray()
    while chunk := conn.recv(65536):
        data += chunk
    conn.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def in_flight(server: RunningServer) -> tuple[int, int]:
    state = httpx.get(server.base + "/health", timeout=10).json()["models"][CODER]
    return state["running"], state["waiting"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_twenty_keystrokes_leave_nothing_running_and_the_last_completes(
        editor_server: RunningServer, stream: bool) -> None:
    typed = len(SOURCE) - KEYSTROKES * 3
    previous: socket.socket | None = None
    for k in range(KEYSTROKES):
        conn = send(editor_server, infill(SOURCE[:typed + 3 * k], stream))
        if previous is not None:
            previous.close()  # the editor abandons the last request
        previous = conn
        time.sleep(GAP_S)
    assert previous is not None
    status, body = read_all(previous)
    assert status == 200, body
    if stream:
        # frames end in "\n" only; the model's text may hold U+2028 or U+0085, which
        # str.splitlines() would also break on (a random tiny model does write them)
        frames = [json.loads(line[6:]) for line in body.decode(errors="replace").split("\n")
                  if line.startswith("data: ")]
        last = frames[-1]
        assert last["tokens_cached"] > 0 and "timings/predicted_n" in last
        assert sum(1 for f in frames[:-1] if f.get("content")) > 0
    else:
        text = body.decode()
        last = json.loads(text[text.index("{"):text.rindex("}") + 1])
        assert set(last) == {"content", "timings/prompt_n", "timings/predicted_n", "tokens_cached",
                             "truncated"}
        assert last["timings/predicted_n"] == 400 and last["content"]
    # nothing the editor abandoned is still running or waiting
    deadline = time.monotonic() + 10
    while in_flight(editor_server) != (0, 0):
        assert time.monotonic() < deadline, in_flight(editor_server)
        time.sleep(0.05)


def test_an_abandoned_request_stops_within_a_step(editor_server: RunningServer) -> None:
    """A request closed while it answers frees its slot before it could have finished: with
    both slots taken by abandoned 400-token answers, a third request is served at once."""
    abandoned = [send(editor_server, infill(SOURCE[:40 + i], stream=False)) for i in range(2)]
    time.sleep(0.3)  # both answering
    for conn in abandoned:
        conn.close()
    status, body = read_all(send(editor_server, infill(SOURCE, stream=False, n_predict=4)))
    assert status == 200
    deadline = time.monotonic() + 10
    while in_flight(editor_server) != (0, 0):
        assert time.monotonic() < deadline, in_flight(editor_server)
        time.sleep(0.05)


def test_cached_tokens_grow_along_the_keystrokes(editor_server: RunningServer) -> None:
    """Each keystroke's request reuses the KV of the one before: its header and the prefix typed
    then (FIM puts the suffix after the prefix, so reuse ends where the old prefix did). A text
    no other test types, so only this test's requests can share with it."""
    text = ("class inventory:\n    def count(self, shelf):\n        return len(shelf.items)\n"
            "    def weight(self, shelf):\n        return sum(i.kg for i in shelf.items)\n")
    cached = []
    for k in range(6):
        status, body = read_all(send(editor_server, {
            **infill(text[:60 + 5 * k], stream=False, n_predict=2),
            "response_fields": ["timings/cache_n", "timings/prompt_n"]}))
        assert status == 200
        answer = body.decode()
        cached.append(json.loads(answer[answer.index("{"):answer.rindex("}") + 1])["timings/cache_n"])
    assert all(b > a for a, b in zip(cached, cached[1:])), cached  # each reuses more
    assert cached[-1] >= 60  # the typed prefix, nearly whole
