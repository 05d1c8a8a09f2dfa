"""An Anthropic Messages body as the chat request it means, so it runs on the chat path (templates,
tools in the model's own format, prefix reuse) with nothing of its own below this module.

`system` (a string or text blocks) becomes the system message, without Claude Code's billing
header block (`x-anthropic-billing-header: ...`, different on every request: kept, it would
make every prompt differ from the first line on and no conversation could reuse its cache);
`tool_use` blocks become the assistant's calls and `tool_result` blocks tool messages; `tools`,
`tool_choice` (`auto`, `any`, `tool`, `none`), `stop_sequences` and the sampling fields map one to
one; `metadata.user_id` names the conversation (scoped to the client, as every session is).
A `system` message among the turns (Claude Code sends them) is read as part of the user's turn it
follows, or as a user turn where it stands (chat templates want one system prompt, first; folded
into it, it would change the prompt's head and no turn before it could reuse its cache); one
before any turn joins the system prompt. A role Anthropic does not define is read as the user's.
`cache_control` is a hint and ignored; an image is refused (no model here can see).
"""

from __future__ import annotations

import json

import msgspec

from gateway.errors import InvalidRequest
from gateway.protocol import anthropic, openai

BILLING_HEADER = "x-anthropic-billing-header"
SERVER_TOOL_TYPES_OK = {None, "custom"}


def _kept(text: str) -> bool:
    return not text.lstrip().lower().startswith(BILLING_HEADER)


def system_text(system: str | list[anthropic.Block] | None) -> str | None:
    if system is None:
        return None
    if isinstance(system, str):
        lines = system.split("\n")
        if lines and not _kept(lines[0]):
            lines = lines[1:]
        return "\n".join(lines) or None
    texts = []
    for i, block in enumerate(system):
        if block.type != "text" or block.text is None:
            raise InvalidRequest("`system` blocks must be text blocks", param=f"system[{i}]")
        if _kept(block.text):
            texts.append(block.text)
    return "\n\n".join(texts) or None


def _refuse(block: anthropic.Block, param: str) -> None:
    if block.type == "image":
        raise InvalidRequest("This model cannot see images; send text", param=param)
    raise InvalidRequest(f"Content block type `{block.type}` is not supported here", param=param)


def _result_text(block: anthropic.Block, param: str) -> str:
    content = block.content
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        parts = []
        for j, part in enumerate(content):
            if part.type != "text" or part.text is None:
                _refuse(part, f"{param}.content[{j}]")
            parts.append(part.text or "")
        text = "".join(parts)
    return f"Error: {text}" if block.is_error else text


def _messages(body: anthropic.MessagesRequest | anthropic.CountTokensRequest
              ) -> list[openai.ChatMessage]:
    out: list[openai.ChatMessage] = []
    system = [text for text in [system_text(body.system)] if text]
    for i, message in enumerate(body.messages):
        role = message.role if message.role in ("user", "assistant", "system") else "user"
        if role == "system":  # Claude Code sends some among the turns
            text = system_text(message.content)
            if text and not out:
                system.append(text)  # before any turn: part of the system prompt
            elif text and out[-1].role == "user" and isinstance(out[-1].content, str):
                # part of the user's turn it follows (a turn of its own after the user's confuses
                # small models into answering it); the turns before keep their cache
                out[-1] = msgspec.structs.replace(out[-1], content=f"{out[-1].content}\n\n{text}")
            elif text:
                out.append(openai.ChatMessage(role="user", content=text))
            continue
        if isinstance(message.content, str):
            out.append(openai.ChatMessage(role=role, content=message.content))
            continue
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[openai.ToolCall] = []
        for j, block in enumerate(message.content):
            param = f"messages[{i}].content[{j}]"
            if block.type == "text":
                texts.append(block.text or "")
            elif block.type == "tool_use" and role == "assistant":
                if not block.id or not block.name:
                    raise InvalidRequest("A tool_use block needs its `id` and `name`", param=param)
                calls.append(openai.ToolCall(block.id, openai.ToolCallFunction(
                    block.name, json.dumps(block.input if block.input is not None else {}))))
            elif block.type == "tool_result" and role == "user":
                if not block.tool_use_id:
                    raise InvalidRequest("A tool_result block needs its `tool_use_id`",
                                         param=param)
                out.append(openai.ChatMessage(role="tool", tool_call_id=block.tool_use_id,
                                              content=_result_text(block, param)))
            elif block.type == "thinking" and role == "assistant":
                thoughts.append(block.thinking or "")  # the template decides if it is rendered
            elif block.type == "redacted_thinking" and role == "assistant":
                continue  # Anthropic's encrypted thinking: nothing a local model can read
            else:
                _refuse(block, param)
        if texts or calls or not message.content:
            out.append(openai.ChatMessage(role=role, content="".join(texts) or None
                                          if calls else "".join(texts),
                                          tool_calls=calls or None,
                                          reasoning_content="".join(thoughts) or None))
    if system:
        out.insert(0, openai.ChatMessage(role="system", content="\n\n".join(system)))
    return out


def _tools(tools: list[anthropic.Tool] | None) -> list[openai.Tool] | None:
    chat_tools = []
    for i, tool in enumerate(tools or []):
        if tool.type not in SERVER_TOOL_TYPES_OK:
            raise InvalidRequest(f"Server tool `{tool.type}` is not available here; declare "
                                 "client tools with `name` and `input_schema`", param=f"tools[{i}]")
        chat_tools.append(openai.Tool(type="function", function=openai.FunctionDefinition(
            tool.name, tool.description, tool.input_schema or {"type": "object"})))
    return chat_tools or None


def _tool_choice(choice: anthropic.ToolChoice | None) -> str | openai.NamedToolChoice | None:
    if choice is None:
        return None
    if choice.type == "tool":
        if not choice.name:
            raise InvalidRequest("`tool_choice` of type tool needs the tool's `name`",
                                 param="tool_choice.name")
        return openai.NamedToolChoice("function", openai.NamedFunction(choice.name))
    mapped = {"auto": "auto", "any": "required", "none": "none"}.get(choice.type)
    if mapped is None:
        raise InvalidRequest(f"Unknown `tool_choice` type `{choice.type}`; use auto, any, tool "
                             "or none", param="tool_choice.type")
    return mapped


def chat_request(body: anthropic.MessagesRequest | anthropic.CountTokensRequest
                 ) -> openai.ChatCompletionRequest:
    """The chat request the body means (`count_tokens`' body: without an answer's limits)."""
    if not body.messages:
        raise InvalidRequest("`messages` must not be empty", param="messages")
    choice = body.tool_choice
    parallel = (None if choice is None or choice.disable_parallel_tool_use is None
                else not choice.disable_parallel_tool_use)
    common = {"model": body.model, "messages": _messages(body), "tools": _tools(body.tools),
              "tool_choice": _tool_choice(choice) if body.tools else None,
              "parallel_tool_calls": parallel}
    if isinstance(body, anthropic.CountTokensRequest):
        return openai.ChatCompletionRequest(**common)  # type: ignore[arg-type]
    user = body.metadata.user_id if body.metadata is not None else None
    effort, budget = _thinking(body)
    return openai.ChatCompletionRequest(
        **common,  # type: ignore[arg-type]
        max_completion_tokens=body.max_tokens, temperature=body.temperature, top_p=body.top_p,
        top_k=body.top_k, stop=body.stop_sequences or None,
        prompt_cache_key=f"anthropic:{user}" if user else None,
        reasoning_effort=effort, reasoning_budget=budget)


def _thinking(body: anthropic.MessagesRequest) -> tuple[openai.ReasoningEffort | None, int | None]:
    """`thinking` as (a reasoning effort, a budget): enabled thinks within `budget_tokens`
    (less than `max_tokens`, as Anthropic requires), disabled turns it off, adaptive leaves it
    to the model's default."""
    thinking = body.thinking
    if thinking is None or thinking.type == "adaptive":
        return None, None
    if thinking.type == "disabled":
        return "none", None
    if thinking.type != "enabled":
        raise InvalidRequest(f"Unknown `thinking` type `{thinking.type}`; use enabled, disabled "
                             "or adaptive", param="thinking.type")
    if thinking.budget_tokens is None:
        raise InvalidRequest("`thinking.budget_tokens` is required when thinking is enabled",
                             param="thinking.budget_tokens")
    if thinking.budget_tokens >= body.max_tokens:
        raise InvalidRequest("`max_tokens` must be greater than `thinking.budget_tokens`",
                             param="thinking.budget_tokens")
    return "medium", thinking.budget_tokens
