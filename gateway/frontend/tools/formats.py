"""The tool-call formats chat templates are trained on, found from the template's own text:
Hermes/Qwen (`<tool_call>{json}</tool_call>`), Mistral (`[TOOL_CALLS][{json}, ...]`) and
Llama 3.x (a JSON object `{"name", "parameters"}`, after `<|python_tag|>` or alone); gpt-oss's
harmony calls (`commentary to=functions.NAME`) arrive from the reasoning split as Hermes markup. For these,
the template renders the tools itself and the answer is read in its format; `required` and named
functions still use the generic, grammar-held format (`tools`), which parses on any model.
Small Hermes-family models often leave the tags out and answer the bare call object, or put it in
a JSON code fence: such an answer is a call only when it names a declared tool with arguments that
fit that tool's schema (a user may well ask for JSON), and prose around it keeps it text. Pure.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

import jsonschema

from gateway.protocol import openai

HERMES, MISTRAL, LLAMA3 = "hermes", "mistral", "llama3"
# the markup each format opens a call with (a reply may run on into one)
CALL_MARKERS = {HERMES: "<tool_call>", MISTRAL: "[TOOL_CALLS]", LLAMA3: "<|python_tag|>"}
# a tagged call; the closing tag may be missing when the answer ends right after the JSON
_HERMES_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL)
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n?(.*?)\n?```", re.DOTALL)


def format_of(template_source: str | None) -> str | None:
    """The native format a chat template renders tools in; None: it renders none."""
    if not template_source or "tools" not in template_source:
        return None
    if "<tool_call>" in template_source:
        return HERMES
    if "<|channel|>" in template_source and "functions." in template_source:
        return HERMES  # gpt-oss: the harmony split gives its calls on in Hermes markup
    if "[TOOL_CALLS]" in template_source:
        return MISTRAL
    if "<|python_tag|>" in template_source or "ipython" in template_source:
        return LLAMA3
    return None


def template_tools(tools: list[openai.Tool]) -> list[dict[str, Any]]:
    """The tools as chat templates take them (OpenAI's request shape)."""
    return [{"type": "function", "function": {
        "name": t.function.name, "description": t.function.description or "",
        "parameters": t.function.parameters or {"type": "object", "properties": {}}}}
        for t in tools]


def template_message(message: openai.ChatMessage, text: str) -> dict[str, Any]:
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


def _call(name: object, arguments: object) -> openai.ToolCall | None:
    if not isinstance(name, str) or not name:
        return None
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {},
                                                                   ensure_ascii=False)
    return openai.ToolCall(id=f"call_{uuid.uuid4().hex[:24]}",
                         function=openai.ToolCallFunction(name, text))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


Declared = Mapping[str, dict[str, Any]]  # each declared tool's name and its parameters' schema


def _checked(data: Any, declared: Declared | None, arguments_key: str = "arguments"
             ) -> openai.ToolCall | None:
    """A call, when `data` is one: an object naming a declared tool (`{"name", "arguments"}`,
    or the same inside `"function"`) whose arguments validate against that tool's schema.
    Without `declared`, any name goes (the format's markup already says it is a call)."""
    if isinstance(data, dict) and isinstance(data.get("function"), dict):
        data = data["function"]
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get(arguments_key, data.get("arguments", data.get("parameters", {})))
    if isinstance(arguments, str):  # arguments as a JSON string, as OpenAI writes them
        arguments = _json(arguments)
    if not isinstance(arguments, dict):
        return None
    if declared is not None:
        if data["name"] not in declared or not _valid(arguments, declared[data["name"]]):
            return None
    return _call(data["name"], arguments)


def _valid(arguments: dict[str, Any], schema: dict[str, Any]) -> bool:
    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
    except jsonschema.SchemaError:  # a schema the validator cannot read: the name decides
        return True
    return bool(validator(schema).is_valid(arguments))


def _json_values(text: str) -> list[Any] | None:
    """The JSON values `text` is made of, one after another (whitespace between); None when it
    is anything else."""
    decoder, at = json.JSONDecoder(), 0
    values: list[Any] = []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return values or None
        try:
            value, at = decoder.raw_decode(text, at)
        except ValueError:
            return None
        values.append(value)


def _untagged_calls(text: str, declared: Declared | None) -> list[openai.ToolCall]:
    """Calls a Hermes-family model writes without its tags: the whole answer is a call object
    (or several, or a list of them), bare or in a Markdown code fence. Anything else (prose
    around it, an object that names no declared tool or whose arguments do not fit) is none."""
    body = text.strip()
    fenced = _FENCE.fullmatch(body)
    if fenced:
        body = fenced.group(1)
    values = _json_values(body)
    if values is None:
        return []
    items = values[0] if len(values) == 1 and isinstance(values[0], list) else values
    calls = [_checked(item, declared) for item in items]
    return [c for c in calls if c is not None] if items and None not in calls else []


def parse(fmt: str, text: str, declared: Declared | None = None
          ) -> tuple[str | None, list[openai.ToolCall]]:
    """(the reply's text, its calls) from an answer in `fmt`; text that is no call stays text.
    `declared`: the request's tools; a call must name one of them and fit its schema."""
    calls: list[openai.ToolCall] = []
    if fmt == HERMES:
        kept: list[str] = []
        at = 0
        for found in _HERMES_CALL.finditer(text):
            call = _checked(_json(found.group(1)), declared)
            if call is not None:
                calls.append(call)
                kept.append(text[at:found.start()])
                at = found.end()
        if not calls:
            untagged = _untagged_calls(text, declared) if declared is not None else []
            return (None, untagged) if untagged else (text, [])
        rest = ("".join(kept) + text[at:]).strip()
        return rest or None, calls
    if fmt == MISTRAL and "[TOOL_CALLS]" in text:
        before, _, after = text.partition("[TOOL_CALLS]")
        data = _json(after.strip())
        for item in data if isinstance(data, list) else []:
            call = _checked(item, declared)
            if call is not None:
                calls.append(call)
        return (before.strip() or None) if calls else text, calls
    if fmt == LLAMA3:
        call = _checked(_json(text.replace("<|python_tag|>", "").strip()), declared, "parameters")
        if call is not None:
            return None, [call]
    return text, calls
