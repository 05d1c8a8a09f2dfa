"""Each configuration in clients/ parses, and the requests its client sends (their recorded
shape: fields, paths, headers, as each client's source builds them) succeed on the gateway.

The gateway is `gateway serve` on configs/default.toml as it ships (the clients assume it): the
embedded Qwen2.5-Coder answers chat and fill-in-the-middle under its id and the names the clients
use. Each test reads the endpoint and model from the client's config and sends to the test server
instead of port 8000."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
import pytest
import yaml

from tests.support import RunningServer

CLIENTS = Path(__file__).resolve().parents[2] / "clients"
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.toml"


@pytest.fixture(scope="module")
def gateway_config() -> dict:  # type: ignore[type-arg]
    return tomllib.loads(CONFIG.read_text())


@pytest.fixture(scope="module")
def editors(default_server: RunningServer) -> RunningServer:
    return default_server


def on_test_server(url: str, server: RunningServer) -> str:
    """The client's URL, pointed at the test server (same path)."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port == 8000, url  # the documented address
    return server.base + parts.path


def sse_data(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line[6:]) for line in text.split("\n")
            if line.startswith("data: ") and line[6:].strip() != "[DONE]"]


def test_continue_chat_and_autocomplete(editors: RunningServer) -> None:
    config = yaml.safe_load((CLIENTS / "continue" / "config.yaml").read_text())
    chat = next(m for m in config["models"] if "chat" in m["roles"])
    auto = next(m for m in config["models"] if "autocomplete" in m["roles"])
    assert chat["provider"] == "openai" and auto["provider"] == "llama.cpp"
    # chat: Continue's openai provider, streamed
    client = openai.OpenAI(base_url=on_test_server(chat["apiBase"], editors),
                           api_key=chat["apiKey"], max_retries=0)
    chunks = list(client.chat.completions.create(
        model=chat["model"], messages=[{"role": "user", "content": "Say hi"}], stream=True,
        max_tokens=8, temperature=0.5))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # autocomplete: LlamaCpp.ts posts new URL("completion", apiBase), streamed, no `model`
    options = auto["defaultCompletionOptions"]
    url = on_test_server(auto["apiBase"], editors) + "completion"
    body = {"prompt": "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n<|fim_middle|>",
            "stream": True, "n_predict": options["maxTokens"], "stop": options["stop"],
            "temperature": options["temperature"], "top_p": 0.9, "top_k": 40, "min_p": 0.05,
            "frequency_penalty": 0, "presence_penalty": 0, "mirostat": 0}
    r = httpx.post(url, json=body, headers={"Authorization": "Bearer undefined"}, timeout=60)
    assert r.status_code == 200, r.text
    frames = sse_data(r.text)
    assert frames[-1]["stop"] is True and frames[-1]["model"] == "qwen2.5-coder-0.5b"
    assert auto["model"] in tomllib.loads(CONFIG.read_text())["models"][0]["aliases"]
    # in the model's own markup: the answer ends before its limit (sampled: not its exact text)
    assert frames[-1]["stop_type"] in ("word", "eos")
    assert frames[-1]["tokens_predicted"] < options["maxTokens"]


def test_llama_vscode_completion_and_cache_warming(editors: RunningServer) -> None:
    settings = json.loads((CLIENTS / "llama.vscode" / "settings.json").read_text())
    url = on_test_server(settings["llama-vscode.endpoint"], editors) + "/infill"
    chunks = [{"text": "def sub(a, b):\n    return a - b\n", "time": 1.5, "filename": "util.py"}]
    warm = {"input_prefix": "", "input_suffix": "", "input_extra": chunks, "prompt": "",
            "n_predict": 0, "samplers": [], "cache_prompt": True,
            "t_max_prompt_ms": settings["llama-vscode.t_max_prompt_ms"], "t_max_predict_ms": 1}
    r = httpx.post(url, json=warm, timeout=60)
    assert r.status_code == 200 and r.json()["tokens_predicted"] == 0
    fim = {"input_prefix": "def add(a, b):\n", "input_suffix": "\n", "input_extra": chunks,
           "prompt": "    ret", "n_predict": settings["llama-vscode.n_predict"], "top_k": 40,
           "top_p": 0.99, "stream": False, "samplers": ["top_k", "top_p", "infill"],
           "cache_prompt": True, "n_indent": 4,
           "t_max_prompt_ms": settings["llama-vscode.t_max_prompt_ms"],
           "t_max_predict_ms": settings["llama-vscode.t_max_predict_ms"]}
    r = httpx.post(url, json=fim, timeout=60)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert isinstance(answer["content"], str) and answer["tokens_cached"] > 0
    assert answer["timings"]["cache_n"] > 0  # the warmed extra context was reused
    chat_url = (on_test_server(settings["llama-vscode.endpoint_chat"], editors)
                + f"/{settings['llama-vscode.ai_api_version']}/chat/completions")
    r = httpx.post(chat_url, timeout=60, json={
        "messages": [{"role": "system", "content": "You are an expert coder."},
                     {"role": "user", "content": "Name a sorting algorithm."}],
        "stream": False, "temperature": 0.8, "model": settings["llama-vscode.ai_model"],
        "max_tokens": 8})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


def test_llama_vim_completion_with_its_response_fields(editors: RunningServer) -> None:
    text = (CLIENTS / "llama.vim" / "llama.vim").read_text()
    config = dict(re.findall(r"'(\w+)':\s*'?([^',]*)'?,", text))
    url = on_test_server(config["endpoint"], editors)
    chunk = {"text": "import os\n", "time": [1, 2], "filename": "main.py"}
    ring = {"input_prefix": "", "input_suffix": "", "input_extra": [chunk], "prompt": "",
            "n_predict": 0, "temperature": 0.0, "stream": False, "samplers": [],
            "cache_prompt": True, "t_max_prompt_ms": 1, "t_max_predict_ms": 1,
            "response_fields": [""]}
    assert httpx.post(url, json=ring, timeout=60).status_code == 200
    # the warming happened, though it asked for 1 ms of prompt time (llama.cpp ignores that)
    check = {**ring, "n_predict": 1, "t_max_prompt_ms": 5000, "response_fields": ["timings/cache_n"]}
    assert httpx.post(url, json=check, timeout=60).json()["timings/cache_n"] > 0
    fields = ["content", "timings/prompt_n", "timings/prompt_ms", "timings/prompt_per_token_ms",
              "timings/prompt_per_second", "timings/predicted_n", "timings/predicted_ms",
              "timings/predicted_per_token_ms", "timings/predicted_per_second", "truncated",
              "tokens_cached"]
    fim = {"input_prefix": "def main():\n", "input_suffix": "\n", "input_extra": [chunk],
           "prompt": "    pri", "n_predict": int(config["n_predict"]), "n_indent": 4,
           "top_k": 40, "top_p": 0.99, "stream": False, "samplers": ["top_k", "top_p", "infill"],
           "cache_prompt": True, "t_max_prompt_ms": int(config["t_max_prompt_ms"]),
           "t_max_predict_ms": int(config["t_max_predict_ms"]), "response_fields": fields}
    r = httpx.post(url, json=fim, headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert set(answer) == set(fields)  # flat keys, as llama.vim reads them
    assert answer["timings/predicted_n"] >= 1 and answer["truncated"] is False


def test_gptel_streams_chat_and_the_gpt35_alias_answers(editors: RunningServer,
                                                         gateway_config: dict) -> None:  # type: ignore[type-arg]
    text = (CLIENTS / "emacs" / "gptel.el").read_text()
    host = re.search(r':host "([^"]+)"', text).group(1)  # type: ignore[union-attr]
    endpoint = re.search(r':endpoint "([^"]+)"', text).group(1)  # type: ignore[union-attr]
    model = re.search(r":models '\(([^)\s]+)\)", text).group(1)  # type: ignore[union-attr]
    url = on_test_server(f"http://{host}{endpoint}", editors)
    for name in (model, "gpt-3.5-turbo"):
        assert name == model or name in gateway_config["models"][0]["aliases"]
        r = httpx.post(url, timeout=60, json={
            "model": name, "messages": [{"role": "user", "content": "Hello"}], "stream": True,
            "temperature": 1.0, "max_tokens": 6})
        assert r.status_code == 200, r.text
        assert "data: [DONE]" in r.text and any(
            (f["choices"] or [{}])[0].get("delta", {}).get("content") for f in sse_data(r.text))


def test_tabby_completion_and_chat(editors: RunningServer) -> None:
    config = tomllib.loads((CLIENTS / "tabby" / "config.toml").read_text())
    completion, chat = config["model"]["completion"]["http"], config["model"]["chat"]["http"]
    assert completion["kind"] == "llama.cpp/completion" and chat["kind"] == "openai/chat"
    prompt = completion["prompt_template"].format(prefix="def add(a, b):\n    return ",
                                                  suffix="\n")
    body = {"seed": 18_000_000_000_000_000_000, "prompt": prompt, "n_predict": 16,
            "temperature": 0.1, "stream": True, "penalty_last_n": 0, "presence_penalty": 0.0}
    r = httpx.post(on_test_server(completion["api_endpoint"], editors) + "/completion",
                   json=body, timeout=60)
    assert r.status_code == 200, r.text
    frames = sse_data(r.text)
    assert all("content" in f and "stop" in f for f in frames) and frames[-1]["stop"] is True
    client = openai.OpenAI(base_url=on_test_server(chat["api_endpoint"], editors), api_key="x",
                           max_retries=0)
    answer = client.chat.completions.create(
        model=chat["model_name"], messages=[{"role": "user", "content": "Hi"}], max_tokens=6)
    assert answer.choices[0].message.content
