"""The embedded default answers: `gateway serve` on configs/default.toml as it ships (Qwen2.5-Coder
0.5B Instruct, its chat template read from the GGUF), driven by the official SDK, httpx and curl.
Greedy, so each answer is the model's own and each assertion could fail."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import msgspec
import openai
import pytest

from gateway.engine.llama_backend import LlamaModel
from gateway.frontend.prompt.chat_template import ChatTemplate
from gateway.frontend.prompt.infill import ExtraText, FimTokens, infill_tokens
from gateway.frontend.tools.formats import template_message, template_tools
from gateway.protocol import openai as wire
from tests.support import RunningServer, model_status

MODEL = "qwen2.5-coder-0.5b"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string",
                                                             "description": "The city"}},
                   "required": ["city"]}}}
ASK_WEATHER = [{"role": "user", "content": "What's the weather in Paris right now?"}]
ADD_PREFIX, ADD_SUFFIX = "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"


@pytest.fixture(scope="module")
def client(default_server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=default_server.v1, api_key="local", max_retries=0)


@pytest.fixture(scope="module")
def vocab(qwen_path: Path) -> LlamaModel:
    return LlamaModel(qwen_path, vocab_only=True)


def test_the_shipped_config_serves_the_coder_as_default_and_gemma_asleep(
        client: openai.OpenAI, default_server: RunningServer) -> None:
    ids = {m.id for m in client.models.list().data}
    assert ids == {MODEL, "gemma-3-270m"}
    assert model_status(default_server, MODEL)["state"] == "ready"
    assert model_status(default_server, "gemma-3-270m")["state"] == "sleeping"
    props = httpx.get(default_server.base + "/props", timeout=10).json()
    assert props["model_alias"] == MODEL and "<tool_call>" in props["chat_template"]
    assert props["infill"] == {"supported": True, "repo_level": True}
    # the test run assembled and verified the file once (`qwen_path`): the server used it as is
    assert "assembling" not in default_server.log()


def test_the_capital_of_france_is_paris(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="default", temperature=0, max_tokens=32,
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert reply.model == MODEL
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"  # it ended by itself, not at max_tokens


def test_a_streamed_chat_on_the_sdk_gives_a_sensible_reply(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="default", temperature=0, max_tokens=96, stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "system", "content": "Answer in one short sentence."},
                  {"role": "user", "content": "In Python, which keyword defines a function?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3  # streamed
    assert "def" in text and chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens < 96


def test_curl_streams_the_reply(default_server: RunningServer) -> None:
    body = json.dumps({"model": "default", "stream": True, "max_tokens": 24, "temperature": 0,
                       "messages": [{"role": "user", "content": "Say hello."}]})
    out = subprocess.run(["curl", "-sN", default_server.v1 + "/chat/completions", "-H",
                          "Content-Type: application/json", "-d", body],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    frames = [json.loads(line[6:]) for line in out.splitlines()
              if line.startswith("data: {")]
    text = "".join(f["choices"][0]["delta"].get("content") or "" for f in frames if f["choices"])
    assert "hello" in text.lower() and out.rstrip().endswith("data: [DONE]")


def test_infill_gives_the_middle_and_stops_where_it_ends(default_server: RunningServer) -> None:
    reply = httpx.post(default_server.base + "/infill", timeout=120, json={
        "input_prefix": ADD_PREFIX, "input_suffix": ADD_SUFFIX, "temperature": 0,
        "n_predict": 64}).json()
    assert reply["content"] == "a + b"
    # the model runs on past the middle (here `print(add(5, 3))`, a fence, prose): ended there
    assert reply["stop_type"] == "word" and reply["stopping_word"].startswith("print(")
    assert reply["tokens_predicted"] < 20


def test_ignore_eos_asks_for_every_token_past_the_middle_too(
        default_server: RunningServer) -> None:
    reply = httpx.post(default_server.base + "/infill", timeout=120, json={
        "input_prefix": ADD_PREFIX, "input_suffix": ADD_SUFFIX, "temperature": 0,
        "n_predict": 24, "ignore_eos": True}).json()
    assert reply["content"].startswith("a + b\n") and reply["tokens_predicted"] == 24
    assert reply["stop_type"] == "limit"


def test_a_streamed_infill_sends_no_text_past_the_middle(default_server: RunningServer) -> None:
    with httpx.stream("POST", default_server.base + "/infill", timeout=120, json={
            "input_prefix": ADD_PREFIX, "input_suffix": ADD_SUFFIX, "temperature": 0,
            "n_predict": 64, "stream": True}) as r:
        frames = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert "".join(f["content"] for f in frames) == "a + b"
    assert frames[-1]["stop"] is True and frames[-1]["stop_type"] == "word"


def test_completions_with_a_suffix_fill_the_middle(client: openai.OpenAI) -> None:
    reply = client.completions.create(model="default", prompt=ADD_PREFIX, suffix=ADD_SUFFIX,
                                      temperature=0, max_tokens=64)
    assert reply.choices[0].text == "a + b" and reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens < 20


def test_a_prompt_in_the_models_fim_markup_stops_too(default_server: RunningServer) -> None:
    """Tabby and Continue's llama.cpp provider render the FIM prompt themselves."""
    prompt = f"<|fim_prefix|>{ADD_PREFIX}<|fim_suffix|>{ADD_SUFFIX}<|fim_middle|>"
    reply = httpx.post(default_server.base + "/completion", timeout=120, json={
        "prompt": prompt, "temperature": 0, "n_predict": 64}).json()
    assert reply["content"] == "a + b" and reply["stop_type"] == "word"


def test_repo_level_fim_uses_the_models_repo_tokens(default_server: RunningServer,
                                                    vocab: LlamaModel) -> None:
    prefix, suffix = "import utils\n\nx = utils.", "\n"
    extra = [{"filename": "utils.py",
              "text": "def magic_number():\n    return 4217\n\ndef greet(name):\n"
                      "    return 'hi ' + name\n"}]

    def infill(chunks: list[dict[str, str]]) -> dict:  # type: ignore[type-arg]
        return dict(httpx.post(default_server.base + "/infill", timeout=120, json={
            "input_prefix": prefix, "input_suffix": suffix, "input_extra": chunks,
            "temperature": 0, "n_predict": 16}).json())

    with_extra, without = infill(extra), infill([])
    assert with_extra["content"].startswith("magic_number()")  # read from the other file
    assert not without["content"].startswith("magic_number")
    assert vocab.fim_tokens is not None and vocab.fim_rep >= 0 and vocab.fim_sep >= 0
    pre, suf, mid = vocab.fim_tokens
    expected = infill_tokens(vocab, FimTokens(pre, suf, mid, vocab.fim_rep, vocab.fim_sep), None,
                             prefix, suffix, [ExtraText(c["filename"], c["text"]) for c in extra],
                             "", 8192, 16)
    assert with_extra["tokens_evaluated"] == len(expected)
    assert expected[0] == vocab.fim_rep and expected.count(vocab.fim_sep) == 2


def test_the_model_calls_a_tool_it_writes_as_bare_json(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="default", messages=ASK_WEATHER,
                                           tools=[WEATHER], temperature=0, max_tokens=64)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}


def test_a_streamed_tool_call(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="default", messages=ASK_WEATHER, tools=[WEATHER], temperature=0, max_tokens=64,
        stream=True))
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert len(deltas) == 1 and deltas[0].id and deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    assert json.loads(deltas[0].function.arguments or "") == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_reply_with_tools_on_offer_streams_as_it_comes(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Hi! Who are you?"}],
        tools=[WEATHER], temperature=0, max_tokens=60, stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 5  # token by token, not one lump
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)


def test_json_naming_no_declared_tool_stays_content(client: openai.OpenAI) -> None:
    """Asked for code, with a tool it has no use for, this model answers (here) a fenced call of
    a tool it made up, `add_numbers`: not a declared tool, so it is the reply."""
    reply = client.chat.completions.create(
        model="default", tools=[WEATHER], temperature=0, max_tokens=80,
        messages=[{"role": "user",
                   "content": "Write a Python function that returns the sum of two numbers."}])
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert choice.message.content


@pytest.mark.parametrize("stream", [False, True])
def test_the_turn_after_the_tool_result(client: openai.OpenAI, vocab: LlamaModel,
                                        stream: bool) -> None:
    """The tool's result goes to the model through its own template (`<tool_response>`), on the
    conversation's KV cache; the answer is read as any other. (This 0.5B model, given the result,
    calls the tool again instead of answering: see the issue's note.)"""
    key = f"weather-{stream}"
    first = client.chat.completions.create(model="default", messages=ASK_WEATHER, tools=[WEATHER],
                                           temperature=0, max_tokens=64, prompt_cache_key=key)
    call = (first.choices[0].message.tool_calls or [])[0]
    history = [*ASK_WEATHER, first.choices[0].message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "18°C and sunny"}]
    if stream:
        chunks = list(client.chat.completions.create(
            model="default", messages=history, tools=[WEATHER], temperature=0, max_tokens=64,
            prompt_cache_key=key, stream=True, stream_options={"include_usage": True}))
        usage, finish = chunks[-1].usage, chunks[-2].choices[0].finish_reason
        calls = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        after = client.chat.completions.create(model="default", messages=history, tools=[WEATHER],
                                               temperature=0, max_tokens=64, prompt_cache_key=key)
        usage, finish = after.usage, after.choices[0].finish_reason
        calls = list(after.choices[0].message.tool_calls or [])
        content = after.choices[0].message.content or ""
    template = ChatTemplate(vocab.chat_template or "", vocab.bos_text, vocab.eos_text)
    said = wire.ToolCall(id=call.id, function=wire.ToolCallFunction("get_weather",
                                                                   call.function.arguments))
    expected = [wire.ChatMessage(role="user", content=ASK_WEATHER[0]["content"]),
                wire.ChatMessage(role="assistant", tool_calls=[said]),
                wire.ChatMessage(role="tool", tool_call_id=call.id, content="18°C and sunny")]
    tools = template_tools([msgspec.convert(WEATHER, wire.Tool)])
    rendered = template.render([template_message(m, str(m.content or "")) for m in expected], tools)
    assert "<tool_response>\n18°C and sunny\n</tool_response>" in rendered
    assert usage is not None and usage.prompt_tokens == len(vocab.tokenize(rendered, True))
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 2  # type: ignore[union-attr]
    if calls:  # a call is one of the declared tool, with arguments that fit it
        assert finish == "tool_calls" and not content
        assert all(c.function.name == "get_weather" for c in calls)  # type: ignore[union-attr]
        assert all("city" in json.loads(c.function.arguments) for c in calls)  # type: ignore[union-attr]
    else:
        assert content and finish in ("stop", "length")
