"""The clients of issue 21, each with its configuration from clients/ and the requests it sends
(their shape read from the clients' sources), against the embedded default:

- Claude Code (`claude-code/settings.json`): a streamed `/v1/messages?beta=true` with its headers,
  billing block, cached system blocks, tools, `thinking`, `context_management`, a system message
  among the turns and a JSON-string `metadata.user_id`; the tool round trip; count_tokens.
- Open WebUI (`open-webui/open-webui.env`): its connection check, model list, a streamed chat with
  the options and top-level fields it sends, and a title task (`stream: false`).
- Home Assistant (`home-assistant/ollama.json`): the `ollama.AsyncClient` calls it makes: list and
  ps (its 30 s poll), a streamed chat with its tools, `num_ctx`, `keep_alive` and `think`, then the
  tool result sent back with role `tool` and no id.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import ollama

from tests.support import RunningServer, sse_events

CLIENTS = Path(__file__).resolve().parents[2] / "clients"
MODEL = "qwen2.5-coder-0.5b"


def _here(url: str, server: RunningServer) -> str:
    """A client's configured URL, pointed at the test's server."""
    return server.base + url[url.index(":8000") + len(":8000"):]


def test_claude_code(default_server: RunningServer) -> None:
    env = json.loads((CLIENTS / "claude-code" / "settings.json").read_text())["env"]
    assert {env[k] for k in env if k.endswith("_MODEL")} == {MODEL}
    base = _here(env["ANTHROPIC_BASE_URL"], default_server)
    headers = {"authorization": f"Bearer {env['ANTHROPIC_AUTH_TOKEN']}",
               "anthropic-version": "2023-06-01", "x-app": "cli",
               "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
               "user-agent": "claude-cli/2.1.160 (external, cli)"}
    user_id = json.dumps({"device_id": "ab12", "account_uuid": "", "session_id": "5f0c-test"})
    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.160.e51; "
                                       "cc_entrypoint=cli; cch=a5145;"},
              {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
               "cache_control": {"type": "ephemeral"}},
              {"type": "text", "text": "Use the tools to inspect files. Be concise.",
               "cache_control": {"type": "ephemeral"}}]
    tools = [{"name": "Read", "description": "Reads a file from the local filesystem.",
              "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}},
                               "required": ["file_path"], "additionalProperties": False,
                               "$schema": "http://json-schema.org/draft-07/schema#"},
              "cache_control": {"type": "ephemeral"}}]
    turn = [{"role": "user", "content": [{"type": "text", "text": "Read the file /etc/hostname.",
                                          "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Available agent types for the Agent tool: none."}]
    body = {"model": env["ANTHROPIC_MODEL"], "max_tokens": 32000, "stream": True,
            "temperature": 0, "system": system, "tools": tools, "messages": turn,
            "metadata": {"user_id": user_id}, "thinking": {"type": "adaptive"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}}
    counted = httpx.post(base + "/v1/messages/count_tokens?beta=true", headers=headers, timeout=60,
                         json={k: body[k] for k in ("model", "system", "tools", "messages")})
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 50
    r = httpx.post(base + "/v1/messages?beta=true", headers=headers, json=body, timeout=120)
    assert r.status_code == 200, r.text
    events = sse_events(r.text)
    assert events[0][0] == "message_start" and events[-1][0] == "message_stop"
    start = [d["content_block"] for n, d in events if n == "content_block_start"]
    uses = [b for b in start if b["type"] == "tool_use"]
    assert len(uses) == 1 and uses[0]["name"] == "Read" and uses[0]["input"] == {}
    arguments = "".join(d["delta"]["partial_json"] for n, d in events
                        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta")
    assert json.loads(arguments) == {"file_path": "/etc/hostname"}
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"]["input_tokens"] + delta["usage"]["cache_read_input_tokens"] == \
        counted.json()["input_tokens"]
    # the result goes back; the conversation continues from its KV (a new billing block again)
    system[0] = {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.160.e51; "
                                         "cc_entrypoint=cli; cch=0d9e1;"}
    follow = {**body, "system": system, "messages": [
        *turn, {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": ""},
            {"type": "tool_use", "id": uses[0]["id"], "name": "Read",
             "input": {"file_path": "/etc/hostname"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0]["id"],
                                      "content": [{"type": "text", "text": "rig-01\n"}]}]}]}
    again = httpx.post(base + "/v1/messages?beta=true", headers=headers, json=follow, timeout=120)
    assert again.status_code == 200
    usage = next(d for n, d in sse_events(again.text) if n == "message_delta")["usage"]
    assert usage["cache_read_input_tokens"] >= counted.json()["input_tokens"] - 2


def _env(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_open_webui(default_server: RunningServer) -> None:
    env = _env(CLIENTS / "open-webui" / "open-webui.env")
    base = _here(env["OLLAMA_BASE_URL"], default_server)
    version = httpx.get(base + "/api/version").json()["version"]
    assert [int(p) for p in version.split(".")]  # how it checks the connection
    tags = httpx.get(base + "/api/tags").json()["models"]
    names = {m["model"]: m["name"] for m in tags}  # read without defaults
    assert names[f"{MODEL}:latest"] == f"{MODEL}:latest"
    assert all("parameter_size" in m["details"] for m in tags)
    httpx.get(base + "/api/ps").json()["models"]
    chat = {"model": f"{MODEL}:latest", "stream": True, "keep_alive": "5m", "think": False,
            "system": "You are a helpful assistant.",
            "options": {"temperature": 0, "top_p": 0.9, "num_ctx": 4096, "num_predict": 40,
                        "repeat_penalty": 1.1, "mirostat": 0},
            "messages": [{"role": "user", "content": "Name one planet."}]}
    with httpx.stream("POST", base + "/api/chat", json=chat, timeout=120) as r:
        lines = [json.loads(line) for line in r.iter_lines()]
    assert lines[-1]["done"] and int(lines[-1].get("prompt_eval_count", 0)) > 0
    assert lines[-1].get("eval_duration", 0) > 0
    reply = "".join(line["message"]["content"] for line in lines)
    assert reply.strip()
    title = httpx.post(base + "/api/chat", timeout=120, json={
        "model": f"{MODEL}:latest", "stream": False, "options": {"temperature": 0},
        "messages": [{"role": "user", "content": f"Title for a chat that said: {reply}. "
                                                 "Three words, no quotes."}]}).json()
    assert title["done"] and title["message"]["content"].strip()
    openai_models = httpx.get(_here(env["OPENAI_API_BASE_URL"], default_server) + "/models",
                              headers={"authorization": f"Bearer {env['OPENAI_API_KEY']}"})
    assert MODEL in {m["id"] for m in openai_models.json()["data"]}


def test_home_assistant(default_server: RunningServer) -> None:
    settings = json.loads((CLIENTS / "home-assistant" / "ollama.json").read_text())

    async def conversation() -> None:
        client = ollama.AsyncClient(host=_here(settings["url"], default_server))
        listed = [m["model"] for m in (await client.list())["models"]]
        assert settings["model"] in listed  # else it would try `pull`
        awake = (await client.ps())["models"]
        assert sum(m["size"] for m in awake) > 0 and all("size_vram" in m for m in awake)
        tools = [{"type": "function", "function": {
            "name": "HassTurnOn", "description": "Turns on/opens a device or entity",
            "parameters": {"type": "object", "properties": {"name": {"type": "string"},
                                                            "area": {"type": "string"}},
                           "required": ["name"]}}}]
        messages = [{"role": "system", "content": "You control a home. Use the tools."},
                    {"role": "user", "content": "Turn on the kitchen light."}]
        options = {"num_ctx": settings["num_ctx"], "temperature": 0}
        calls, text = [], ""
        async for chunk in await client.chat(model=settings["model"], messages=messages,
                                             tools=tools, stream=True, options=options,
                                             keep_alive=settings["keep_alive"],
                                             think=settings["think"]):
            text += chunk["message"]["content"] or ""
            calls += chunk["message"].get("tool_calls") or []
        assert len(calls) == 1 and calls[0]["function"]["name"] == "HassTurnOn"
        arguments = calls[0]["function"]["arguments"]
        assert dict(arguments.items())["name"]  # it calls .items() on them
        messages += [{"role": "assistant", "content": text, "tool_calls": calls},
                     {"role": "tool", "content": json.dumps({"success": True})}]
        done = None
        async for chunk in await client.chat(model=settings["model"], messages=messages,
                                             tools=tools, stream=True, options=options,
                                             keep_alive=settings["keep_alive"],
                                             think=settings["think"]):
            done = chunk
        assert done is not None and done["done"]

    asyncio.run(conversation())
