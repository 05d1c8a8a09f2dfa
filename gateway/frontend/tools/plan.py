"""Tool calling on any model: OpenAI's `tools` and `tool_choice` turned into a prompt and a
grammar, and the model's answer turned back into `tool_calls`.

The format is llama.cpp's generic one (what llama-server uses for templates without tool
support of their own): the model answers with one JSON object, either
`{"tool_calls": [{"name": ..., "arguments": {...}}]}` or `{"response": "..."}`, held to that
shape by a grammar made from the tools' parameter schemas, so the answer always parses:
`required` and a named function allow only calls (a named one only to it), `auto` either, `none`
no tools at all. One call per answer unless the request sets `parallel_tool_calls` (llama-server's
default too: a small model allowed "one or more" calls repeats one until `max_tokens`). The conversation's earlier calls and tool results are written into the
messages in the same shape, so any chat template renders them. Pure: no I/O.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway.protocol import openai
from gateway.errors import InvalidRequest
from gateway.frontend.tools import formats as tool_formats

AUTO, NONE, REQUIRED = "auto", "none", "required"
MAX_PARALLEL_CALLS = 8


@dataclass(frozen=True)
class ToolPlan:
    instructions: str  # what the system prompt gains: the tools and how to answer
    schema: dict[str, Any] | None  # the JSON schema the answer follows (None: free text)
    calls_only: bool  # `required` or a named function: the answer is always calls
    native: str | None = None  # the template's own format (`tool_formats`): it renders the tools
    # the tools a native answer may call, each with its parameters' schema
    declared: dict[str, dict[str, Any]] = field(default_factory=dict)

    def read(self, text: str) -> Parsed | None:
        """The answer as a reply or calls, in the format it was asked in; None when it is not
        the JSON the generic format holds it to (cut short by `max_tokens`)."""
        if self.native is None:
            return parse(text)
        return Parsed(*tool_formats.parse(self.native, text, self.declared))


def plan(tools: list[openai.Tool] | None, choice: str | openai.NamedToolChoice | None,
         parallel: bool | None, native: str | None = None) -> ToolPlan | None:
    """How this request's answer is asked for and held to shape; None: no tools."""
    if choice is not None and not tools:
        raise InvalidRequest("`tool_choice` needs `tools`", param="tool_choice")
    if not tools:
        return None
    for i, tool in enumerate(tools):
        if tool.type != "function":
            raise InvalidRequest(f"Tool type `{tool.type}` is not supported; use `function`",
                                 param=f"tools[{i}].type")
    names = [t.function.name for t in tools]
    if len(set(names)) != len(names):
        raise InvalidRequest("Tool names must be unique", param="tools")
    mode = choice if isinstance(choice, str) or choice is None else None
    if mode is None and isinstance(choice, openai.NamedToolChoice):
        if choice.function.name not in names:
            raise InvalidRequest(f"`tool_choice` names `{choice.function.name}`, which is not "
                                 "among `tools`", param="tool_choice.function.name")
        tools = [t for t in tools if t.function.name == choice.function.name]
    elif (mode or AUTO) not in (AUTO, NONE, REQUIRED):
        raise InvalidRequest(f"Unknown `tool_choice` `{mode}`; use none, auto, required or a "
                             "function", param="tool_choice")
    if mode == NONE:
        return None
    if native is not None and (mode or AUTO) == AUTO and not isinstance(choice, openai.NamedToolChoice):
        declared = {t.function.name: t.function.parameters or {} for t in tools}
        return ToolPlan("", None, False, native, declared)  # the template renders the tools
    # one call unless the request asks for parallel calls (as llama-server: small models asked
    # for "one or more" repeat a call until max_tokens), and never more than MAX_PARALLEL_CALLS
    calls: dict[str, Any] = {"type": "array", "minItems": 1,
                             "maxItems": MAX_PARALLEL_CALLS if parallel else 1,
                             "items": {"anyOf": [_call_schema(t) for t in tools]}}
    calls_answer: dict[str, Any] = {"type": "object", "properties": {"tool_calls": calls},
                                    "required": ["tool_calls"]}
    schema: dict[str, Any]
    calls_only = mode != AUTO and mode is not None or isinstance(choice, openai.NamedToolChoice)
    if calls_only:
        schema, how = calls_answer, ('Answer with one JSON object calling tools: '
                                     '{"tool_calls": [{"name": <tool name>, "arguments": '
                                     '<its arguments>}]}.')
    else:
        reply = {"type": "object", "properties": {"response": {"type": "string"}},
                 "required": ["response"]}
        schema = {"anyOf": [calls_answer, reply]}
        how = ('Answer with one JSON object: either {"tool_calls": [{"name": <tool name>, '
               '"arguments": <its arguments>}]} to call tools, or {"response": <your reply>} to '
               'reply to the user.')
    described = json.dumps([msgspec_to_builtins(t.function) for t in tools], ensure_ascii=False)
    return ToolPlan(f"You can call these tools:\n{described}\n{how}", schema, calls_only)


def _call_schema(tool: openai.Tool) -> dict[str, Any]:
    parameters = tool.function.parameters or {"type": "object", "properties": {}}
    return {"type": "object",
            "properties": {"name": {"const": tool.function.name}, "arguments": parameters},
            "required": ["name", "arguments"]}


def msgspec_to_builtins(function: openai.FunctionDefinition) -> dict[str, Any]:
    out: dict[str, Any] = {"name": function.name}
    if function.description:
        out["description"] = function.description
    out["parameters"] = function.parameters or {"type": "object", "properties": {}}
    return out


def history_message(message: openai.ChatMessage, text: str) -> tuple[str, str]:
    """(role, content) for a message of a conversation with tools, in the answer's shape: an
    assistant's calls as the JSON it would have answered, a tool's result as a user turn that
    says which call it answers."""
    if message.role == "assistant" and message.tool_calls:
        calls = [{"name": c.function.name, "arguments": _arguments(c.function.arguments)}
                 for c in message.tool_calls]
        return "assistant", json.dumps({"tool_calls": calls}, ensure_ascii=False)
    if message.role == "tool":
        label = message.name or message.tool_call_id or "a tool"
        return "user", f"Result of {label}:\n{text}"
    return message.role, text


def arguments_object(call: openai.ToolCall) -> dict[str, Any]:
    """A call's arguments as the object protocols that send objects want ({} if not one)."""
    value = _arguments(call.function.arguments)
    return value if isinstance(value, dict) else {}


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Parsed:
    content: str | None
    calls: list[openai.ToolCall]


def parse(text: str) -> Parsed | None:
    """The answer as a reply or calls; None when it is not the JSON it had to be (cut short by
    `max_tokens`)."""
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    if isinstance(answer.get("tool_calls"), list):
        calls = []
        for call in answer["tool_calls"]:
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                return None
            arguments = json.dumps(call.get("arguments", {}), ensure_ascii=False)
            calls.append(openai.ToolCall(id=f"call_{uuid.uuid4().hex[:24]}",
                                       function=openai.ToolCallFunction(call["name"], arguments)))
        return Parsed(None, calls)
    if isinstance(answer.get("response"), str):
        return Parsed(answer["response"], [])
    return None
