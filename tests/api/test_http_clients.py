"""Plain HTTP clients: curl -N, httpx, a raw socket; routes without /v1; disconnects; queueing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.support import RunningServer, model_block, running_server

MODEL = "gemma-3-270m"


def sse_payloads(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]


def test_curl_streams_chat(server: RunningServer) -> None:
    body = json.dumps({"model": MODEL, "stream": True, "max_tokens": 8, "ignore_eos": True,
                       "messages": [{"role": "user", "content": "Say hello"}]})
    out = subprocess.run(
        ["curl", "-N", "-sS", "--max-time", "60", "-H", "Content-Type: application/json",
         "-H", "Authorization: Bearer whatever", "-d", body, server.v1 + "/chat/completions"],
        capture_output=True, text=True, check=True,
    ).stdout
    payloads = sse_payloads(out)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    for p in payloads[:-1]:  # compact JSON in every frame
        assert json.dumps(json.loads(p), separators=(",", ":"), ensure_ascii=False) == p
    for chunk in chunks:  # fields the OpenAI schema marks required are present, even as null
        assert {"id", "object", "created", "model", "choices"} <= set(chunk)
        assert set(chunk["choices"][0]) >= {"index", "delta", "finish_reason", "logprobs"}


def test_routes_answer_without_v1_prefix(server: RunningServer) -> None:
    assert httpx.get(server.base + "/models").json()["data"][0]["id"] == MODEL
    r = httpx.post(server.base + "/chat/completions",
                   json={"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200
    r = httpx.post(server.base + "/completions", json={"model": MODEL, "max_tokens": 2, "prompt": "x"})
    assert r.status_code == 200 and r.json()["object"] == "text_completion"


def test_non_streamed_response_has_required_nulls(server: RunningServer) -> None:
    r = httpx.post(server.v1 + "/chat/completions",
                   json={"model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": "x"}]})
    data = r.json()
    choice = data["choices"][0]
    assert choice["logprobs"] is None and "logprobs" in choice
    assert choice["message"]["refusal"] is None and "refusal" in choice["message"]
    assert data["usage"]["prompt_tokens_details"]["cached_tokens"] >= 0


def test_connection_closes_right_after_done(server: RunningServer) -> None:
    body = json.dumps({"model": MODEL, "stream": True, "max_tokens": 4,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        started = time.monotonic()
        while True:
            data = sock.recv(65536)
            if not data:
                break  # the server closed the socket: readers that wait for EOF finish
            received += data
            assert time.monotonic() - started < 30, "server kept the connection open"
    assert b"data: [DONE]" in received
    assert b"connection: close" in received.lower()


def test_disconnect_stops_generation(server: RunningServer) -> None:
    body = {"model": MODEL, "stream": True, "max_tokens": 900, "ignore_eos": True,
            "messages": [{"role": "user", "content": "Tell a very long story"}]}
    with httpx.stream("POST", server.v1 + "/chat/completions", json=body, timeout=30) as response:
        lines = response.iter_lines()
        for _ in range(6):
            next(lines)
        assert httpx.get(server.base + "/health").json()["models"][MODEL]["running"] >= 1
    # the client is gone: the engine must drop the sequence within a step or so
    deadline = time.monotonic() + 5
    while httpx.get(server.base + "/health").json()["models"][MODEL]["running"] != 0:
        assert time.monotonic() < deadline, "generation kept running after the client left"
        time.sleep(0.05)
    started = time.monotonic()
    r = httpx.post(server.v1 + "/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 4})
    assert r.status_code == 200 and time.monotonic() - started < 5


def test_any_bearer_accepted_without_keys(server: RunningServer) -> None:
    for auth in ("Bearer sk-123", "Bearer x", "Basic abc", None):
        headers = {"Authorization": auth} if auth else {}
        assert httpx.get(server.v1 + "/models", headers=headers).status_code == 200


@pytest.fixture(scope="module")
def single_slot_server(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory):
    config = "[server]\napi_keys = [\"secret-key\"]\n" + model_block(
        MODEL, gemma_path, n_ctx=512, parallel=1, chat_template="gemma", threads=2)
    with running_server(config, tmp_path_factory.mktemp("one-slot")) as running:
        yield running


def test_api_keys_enforced_when_configured(single_slot_server: RunningServer) -> None:
    bad = openai.OpenAI(base_url=single_slot_server.v1, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    good = openai.OpenAI(base_url=single_slot_server.v1, api_key="secret-key", max_retries=0)
    assert good.models.list().data[0].id == MODEL
    assert httpx.get(single_slot_server.base + "/health").status_code == 200


def test_requests_queue_and_never_interrupt_the_running_one(single_slot_server: RunningServer) -> None:
    headers = {"Authorization": "Bearer secret-key"}
    results: dict[int, str] = {}

    def stream(i: int) -> None:
        body = {"model": MODEL, "stream": True, "max_tokens": 24, "ignore_eos": True,
                "prompt": f"Story number {i}:"}
        with httpx.stream("POST", single_slot_server.v1 + "/completions", json=body,
                          headers=headers, timeout=60) as r:
            results[i] = "\n".join(r.iter_lines())

    first = threading.Thread(target=stream, args=(0,))
    first.start()
    deadline = time.monotonic() + 30  # the first holds the only slot before the others come
    while httpx.get(single_slot_server.base + "/health",  # with the key: the details
                    headers=headers).json()["models"][MODEL]["running"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    others = [threading.Thread(target=stream, args=(i,)) for i in (1, 2)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(60)
    assert set(results) == {0, 1, 2}
    for text in results.values():
        payloads = sse_payloads(text)
        assert payloads[-1] == "[DONE]"
        final = json.loads(payloads[-2])
        assert final["choices"][0]["finish_reason"] == "length"  # each ran to its full length
    assert any(": queued position=" in text for text in results.values())


def test_stream_sh_sends_the_key_and_any_question_safely(single_slot_server: RunningServer) -> None:
    script = Path(__file__).resolve().parents[2] / "clients" / "stream.sh"
    question = 'He said "stop" \\ then\nleft'  # quotes, a backslash, a newline
    env = {**os.environ, "GATEWAY_API_KEY": "secret-key", "MODEL": MODEL}
    out = subprocess.run(["sh", str(script), question, single_slot_server.v1], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    frames = sse_payloads(out.stdout)
    assert frames[-1] == "[DONE]" and '"error"' not in out.stdout
    assert json.loads(frames[-2])["choices"][0]["finish_reason"] in ("stop", "length")
    without_key = subprocess.run(["sh", str(script), "hi", single_slot_server.v1],
                                 env={**env, "GATEWAY_API_KEY": "", "OPENAI_API_KEY": ""}, capture_output=True,
                                 text=True, timeout=60)
    assert "invalid_api_key" in without_key.stdout


def test_status_view_asks_for_the_key_a_keyed_gateway_needs(single_slot_server: RunningServer
                                                            ) -> None:
    command = [sys.executable, "-m", "gateway", "status", "--once", "--url", single_slot_server.v1]
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode != 0 and "--api-key" in refused.stderr
    shown = subprocess.run([*command, "--api-key", "secret-key"], capture_output=True, text=True,
                           timeout=60, env=env, check=True).stdout
    assert MODEL in shown and "ready" in shown
