"""The tool-call formats chat templates are trained on, found from the template's own text:
Hermes/Qwen (`<tool_call>{json}</tool_call>`), Mistral (`[TOOL_CALLS][{json}, ...]`) and
Llama 3.x (a JSON object `{"name", "parameters"}`, after `<|python_tag|>` or alone). For these,
the template renders the tools itself and the answer is read in its format; `required` and named
functions still use the generic, grammar-held format (`tools`), which parses on any model. Pure.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from gateway import wire

HERMES, MISTRAL, LLAMA3 = "hermes", "mistral", "llama3"
_HERMES_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def format_of(template_source: str | None) -> str | None:
    """The native format a chat template renders tools in; None: it renders none."""
    if not template_source or "tools" not in template_source:
        return None
    if "<tool_call>" in template_source:
        return HERMES
    if "[TOOL_CALLS]" in template_source:
        return MISTRAL
    if "<|python_tag|>" in template_source or "ipython" in template_source:
        return LLAMA3
    return None


def template_tools(tools: list[wire.Tool]) -> list[dict[str, Any]]:
    """The tools as chat templates take them (OpenAI's request shape)."""
    return [{"type": "function", "function": {
        "name": t.function.name, "description": t.function.description or "",
        "parameters": t.function.parameters or {"type": "object", "properties": {}}}}
        for t in tools]


def template_message(message: wire.ChatMessage, text: str) -> dict[str, Any]:
    """A message as chat templates with tool support take it: an assistant's calls with their
    arguments as objects, a tool's result with the call it answers."""
    out: dict[str, Any] = {"role": "system" if message.role == "developer" else message.role,
                           "content": text}
    if message.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.function.name, "arguments": _json(c.function.arguments) or {}}}
            for c in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def _call(name: object, arguments: object) -> wire.ToolCall | None:
    if not isinstance(name, str) or not name:
        return None
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {},
                                                                   ensure_ascii=False)
    return wire.ToolCall(id=f"call_{uuid.uuid4().hex[:24]}",
                         function=wire.ToolCallFunction(name, text))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse(fmt: str, text: str) -> tuple[str | None, list[wire.ToolCall]]:
    """(the reply's text, its calls) from an answer in `fmt`; text that is no call stays text."""
    calls: list[wire.ToolCall] = []
    if fmt == HERMES:
        for found in _HERMES_CALL.finditer(text):
            data = _json(found.group(1))
            call = _call(data.get("name"), data.get("arguments")) if isinstance(data, dict) else None
            if call is not None:
                calls.append(call)
        rest = _HERMES_CALL.sub("", text).strip() if calls else text
        return (rest or None) if calls else text, calls
    if fmt == MISTRAL and "[TOOL_CALLS]" in text:
        before, _, after = text.partition("[TOOL_CALLS]")
        data = _json(after.strip())
        for item in data if isinstance(data, list) else []:
            call = _call(item.get("name"), item.get("arguments")) if isinstance(item, dict) else None
            if call is not None:
                calls.append(call)
        return (before.strip() or None) if calls else text, calls
    if fmt == LLAMA3:
        data = _json(text.replace("<|python_tag|>", "").strip())
        if isinstance(data, dict) and "name" in data:
            call = _call(data.get("name"), data.get("parameters", data.get("arguments")))
            if call is not None:
                return None, [call]
    return text, calls
