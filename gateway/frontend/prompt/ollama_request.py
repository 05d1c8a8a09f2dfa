"""An Ollama body as the OpenAI-shaped request it means, so `/api/chat` and `/api/generate` run on
the chat and completion paths (templates, tools in the model's own format, structured output,
fill-in-the-middle, prefix reuse).

`options` map onto the sampling fields (`num_predict` onto the answer's limit); `format` ("json"
or a schema) onto `response_format`; `/api/generate` renders its prompt with the model's template
(with `system`) unless `raw`, and with a `suffix` fills in the middle. Model names may carry
Ollama's tag (`qwen2.5-coder-0.5b:latest`). `keep_alive` is read here too.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from gateway.errors import InvalidRequest
from gateway.protocol import ollama, openai

TAG = ":latest"
_DURATION = re.compile(r"(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def model_name(name: str) -> str:
    """The gateway's name for an Ollama model name: without its `:latest` tag."""
    return name[: -len(TAG)] if name.endswith(TAG) else name


def keep_alive_s(value: ollama.KeepAlive) -> float | None:
    """Seconds to keep the model awake after this request: None leaves its setting alone,
    `inf` keeps it forever (a negative value). Numbers are seconds; strings Go durations."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION.findall(text)
        if text in ("0", "-1"):
            seconds = float(text)
        elif parts and "".join(n + u for n, u in parts) == text:
            seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
        else:
            raise InvalidRequest(f"`keep_alive` {value!r} is not a duration (say \"5m\", \"300s\" "
                                 "or a number of seconds)", param="keep_alive")
    else:
        raise InvalidRequest("`keep_alive` is a duration or a number of seconds",
                             param="keep_alive")
    return float("inf") if seconds < 0 else seconds


def _refuse_images(images: list[str] | None, param: str) -> None:
    if images:
        raise InvalidRequest("This model cannot see images; send text", param=param)


def _format(value: str | dict[str, Any] | None) -> openai.ResponseFormat | None:
    if value is None or value == "":
        return None
    if value == "json":
        return openai.ResponseFormat(type="json_object")
    if isinstance(value, dict):
        return openai.ResponseFormat(type="json_schema", json_schema=openai.JsonSchemaFormat(
            name="format", schema=value))
    raise InvalidRequest("`format` is \"json\" or a JSON schema", param="format")


def _sampling(options: ollama.Options | None, fmt: str | dict[str, Any] | None) -> dict[str, Any]:
    o = options or ollama.Options()
    limit = o.num_predict if o.num_predict is not None and o.num_predict > 0 else None
    return {"temperature": o.temperature, "top_p": o.top_p, "top_k": o.top_k, "min_p": o.min_p,
            "seed": o.seed, "stop": o.stop or None, "repeat_penalty": o.repeat_penalty,
            "presence_penalty": o.presence_penalty, "frequency_penalty": o.frequency_penalty,
            "max_tokens": limit, "response_format": _format(fmt)}


def _call(call: ollama.ToolCall) -> openai.ToolCall:
    return openai.ToolCall(call.id or f"call_{uuid.uuid4().hex[:24]}", openai.ToolCallFunction(
        call.function.name, json.dumps(call.function.arguments, ensure_ascii=False)))


def chat_request(body: ollama.ChatRequest) -> openai.ChatCompletionRequest:
    messages: list[openai.ChatMessage] = []
    if body.system and not any(m.role == "system" for m in body.messages):
        messages.append(openai.ChatMessage(role="system", content=body.system))
    for i, m in enumerate(body.messages):
        _refuse_images(m.images, f"messages[{i}].images")
        if m.role not in ("system", "user", "assistant", "tool"):
            raise InvalidRequest(f"Unknown role `{m.role}`; use system, user, assistant or tool",
                                 param=f"messages[{i}].role")
        calls = [_call(c) for c in m.tool_calls or []] or None
        messages.append(openai.ChatMessage(role=m.role, content=m.content or "", tool_calls=calls,
                                           tool_call_id=m.tool_call_id, name=m.tool_name,
                                           reasoning_content=m.thinking))
    tools = [openai.Tool(type="function", function=openai.FunctionDefinition(
        t.function.name, t.function.description, t.function.parameters or {"type": "object"}))
        for t in body.tools or []]
    return openai.ChatCompletionRequest(model=model_name(body.model), messages=messages,
                                        tools=tools or None, reasoning_effort=_effort(body.think),
                                        **_sampling(body.options, body.format))


def _effort(think: bool | str | None) -> openai.ReasoningEffort | None:
    """Ollama's `think` as a reasoning effort: false turns thinking off, true turns it on, and
    gpt-oss's levels (low, medium, high) pass as they are; unset: the model's default."""
    if think is None:
        return None
    if isinstance(think, bool):
        return "medium" if think else "none"
    if think not in ("low", "medium", "high"):
        raise InvalidRequest(f"`think` must be true, false, low, medium or high; got `{think}`",
                             param="think")
    return think  # type: ignore[return-value]


def generate_request(body: ollama.GenerateRequest
                     ) -> openai.ChatCompletionRequest | openai.CompletionRequest:
    """A raw prompt (or one with a `suffix`) as a completion; else the prompt as the user's turn
    of a chat, with `system`."""
    _refuse_images(body.images, "images")
    if body.template:
        raise InvalidRequest("`template` is not supported: the model's own chat template is used "
                             "(or none, with `raw`)", param="template")
    if body.context:
        raise InvalidRequest("`context` (deprecated in Ollama) is not supported; send the whole "
                             "conversation to /api/chat, whose turns reuse their cache",
                             param="context")
    sampling = _sampling(body.options, body.format)
    if body.raw or body.suffix is not None:
        if body.raw and body.system:
            raise InvalidRequest("raw mode does not support a system prompt", param="system")
        return openai.CompletionRequest(model=model_name(body.model), prompt=body.prompt,
                                        suffix=body.suffix, **sampling)
    messages = [openai.ChatMessage(role="system", content=body.system)] if body.system else []
    messages.append(openai.ChatMessage(role="user", content=body.prompt))
    return openai.ChatCompletionRequest(model=model_name(body.model), messages=messages,
                                        reasoning_effort=_effort(body.think), **sampling)
