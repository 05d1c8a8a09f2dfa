"""Ollama's API on the embedded default (Qwen2.5-Coder 0.5B Instruct), driven by the official
`ollama` package (chat, generate, streams, tools, structured output, tags, ps, show, errors)
and by httpx where the wire is the point (NDJSON lines, the final chunk's fields, error shapes).
Greedy. Embeddings are tested beside the OpenAI route's (test_embeddings)."""

from __future__ import annotations

import json
import time

import httpx
import ollama
import pytest

from tests.support import RunningServer

MODEL = "qwen2.5-coder-0.5b"
GREEDY = {"temperature": 0}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@pytest.fixture(scope="module")
def local(default_server: RunningServer) -> ollama.Client:
    return ollama.Client(host=default_server.base)


def test_the_catalogue_names_every_model_with_its_tag(default_server: RunningServer,
                                                      local: ollama.Client) -> None:
    listed = {m.model: m for m in local.list().models}
    assert set(listed) == {f"{MODEL}:latest", "gemma-3-270m:latest"}
    qwen = listed[f"{MODEL}:latest"]
    assert qwen.size > 100_000_000 and len(qwen.digest or "") == 64
    assert qwen.details.family == "qwen2" and qwen.details.parameter_size == "0.5B"
    assert qwen.details.quantization_level == "Q4_K_M"
    running = {m.model for m in local.ps().models}
    states = httpx.get(default_server.base + "/health").json()["models"]
    assert running == {f"{name}:latest" for name, s in states.items() if s["state"] == "ready"}
    assert f"{MODEL}:latest" in running
    shown = local.show(f"{MODEL}:latest")
    assert {"completion", "tools", "insert"} <= set(shown.capabilities or [])
    assert shown.modelinfo["qwen2.context_length"] == 8192 and "im_start" in (shown.template or "")


def test_version_reads_as_numbers(default_server: RunningServer) -> None:
    version = httpx.get(default_server.base + "/api/version").json()["version"]
    assert all(part.isdigit() for part in version.split("."))


def test_chat_answers_whole_and_streamed(local: ollama.Client) -> None:
    ask = [{"role": "user", "content": "Say hello in French."}]
    whole = local.chat(model=MODEL, messages=ask, options=GREEDY)
    assert "bonjour" in whole.message.content.lower() and whole.message.role == "assistant"
    assert whole.done and whole.done_reason == "stop"
    assert whole.prompt_eval_count > 10 and whole.eval_count > 0
    assert whole.total_duration >= whole.eval_duration > 0
    chunks = list(local.chat(model=MODEL, messages=[{"role": "user", "content": "Count to five."}],
                             options=GREEDY, stream=True))
    assert all(not c.done for c in chunks[:-1]) and chunks[-1].done
    text = "".join(c.message.content for c in chunks)
    assert all(n in text for n in "12345") and chunks[-1].eval_count >= len(chunks) - 1
    cut = local.chat(model=MODEL, messages=ask, options={**GREEDY, "num_predict": 2})
    assert cut.done_reason == "length" and cut.eval_count == 2


def test_the_stream_is_ndjson_without_blank_lines(default_server: RunningServer) -> None:
    r = httpx.post(default_server.base + "/api/chat", timeout=120, json={
        "model": f"{MODEL}:latest", "options": GREEDY,
        "messages": [{"role": "user", "content": "Say hi."}]})  # stream: true by default
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = r.text.split("\n")
    assert lines[-1] == "" and all(lines[:-1])
    chunks = [json.loads(line) for line in lines[:-1]]
    assert all("message" in c and c["message"]["role"] == "assistant" for c in chunks)
    last = chunks[-1]
    assert last["done"] is True and chunks[0]["done"] is False
    for key in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration",
                "eval_count", "eval_duration"):
        assert isinstance(last[key], int), key
    assert last["created_at"].endswith("Z")


def test_tools_structured_output_and_generate(local: ollama.Client) -> None:
    called = local.chat(model=MODEL, options=GREEDY, tools=[WEATHER], messages=[
        {"role": "user", "content": "What's the weather in Paris right now?"}])
    calls = called.message.tool_calls or []
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    assert dict(calls[0].function.arguments) == {"city": "Paris"}
    shaped = local.chat(model=MODEL, options=GREEDY, format={
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
        messages=[{"role": "user", "content": "Give me a JSON object with a key a set to 1."}])
    assert isinstance(json.loads(shaped.message.content)["a"], int)
    filled = local.generate(model=MODEL, prompt="def add(a, b):\n    return ",
                            suffix="\n\nprint(add(1, 2))\n", options=GREEDY)
    assert filled.response.strip() == "a + b"
    said = local.generate(model=MODEL, prompt="Why is the sky blue? One sentence.",
                          system="Answer in English.", options={**GREEDY, "num_predict": 40})
    assert "blue" in said.response.lower()
    raw = local.generate(model=MODEL, prompt="1, 2, 3, 4,", raw=True,
                         options={**GREEDY, "num_predict": 3})
    assert "5" in raw.response and raw.done_reason == "length"


def test_keep_alive_is_the_model_s_sleep_timer(default_server: RunningServer,
                                               local: ollama.Client) -> None:
    """`keep_alive: 0` with no prompt puts it to sleep ("unload"); the next request wakes it; a
    negative one keeps it awake for good."""
    gone = local.generate(model=MODEL, prompt="", keep_alive=0)
    assert gone.done_reason == "unload"
    deadline = time.monotonic() + 10  # asleep once nothing holds it (the keep-alive watcher)
    while f"{MODEL}:latest" in {m.model for m in local.ps().models}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    back = local.chat(model=MODEL, messages=[{"role": "user", "content": "Say OK."}],
                      options={**GREEDY, "num_predict": 3}, keep_alive=-1)
    assert back.done
    deadline = time.monotonic() + 5
    while f"{MODEL}:latest" not in {m.model for m in local.ps().models}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    expires = next(m.expires_at for m in local.ps().models if m.model == f"{MODEL}:latest")
    assert expires is not None and expires.year > 2100  # forever
    status = httpx.get(default_server.base + f"/v1/models/{MODEL}").json()["status"]
    assert status["keep_alive_s"] is None
    # 0 on a request: it answers, then sleeps
    answered = local.chat(model=MODEL, messages=[{"role": "user", "content": "Say OK."}],
                          options={**GREEDY, "num_predict": 3}, keep_alive=0)
    assert answered.done and answered.message.content
    deadline = time.monotonic() + 10
    while f"{MODEL}:latest" in {m.model for m in local.ps().models}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    local.generate(model=MODEL, prompt="", keep_alive=-1)  # awake again, for good


def test_bad_input_and_model_management_get_ollama_s_errors(default_server: RunningServer,
                                                            local: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        local.chat(model="llama3:8b", messages=[{"role": "user", "content": "x"}])
    assert missing.value.status_code == 404 and "llama3:8b" in missing.value.error
    with pytest.raises(ollama.ResponseError) as image:
        local.chat(model=MODEL, messages=[{"role": "user", "content": "What is it?",
                                           "images": ["aGVsbG8="]}])
    assert image.value.status_code == 400 and "images" in image.value.error
    with pytest.raises(ollama.ResponseError) as pull:
        local.pull("llama3:8b")
    assert pull.value.status_code == 400 and "config" in pull.value.error
    assert local.pull(f"{MODEL}:latest").status == "success"  # served already
    for path in ("/api/create", "/api/copy", "/api/push"):
        r = httpx.post(default_server.base + path, json={"model": "x"})
        assert r.status_code == 400 and "config" in r.json()["error"]
    bad = httpx.post(default_server.base + "/api/chat", json={"model": MODEL, "messages": "hi"})
    assert bad.status_code == 400 and set(bad.json()) == {"error"}
    keep = httpx.post(default_server.base + "/api/chat", json={
        "model": MODEL, "messages": [{"role": "user", "content": "x"}], "keep_alive": "soon"})
    assert keep.status_code == 400 and "keep_alive" in keep.json()["error"]
