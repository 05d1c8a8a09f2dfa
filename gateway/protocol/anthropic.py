"""Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`) as msgspec
Structs: the request (unknown fields ignored: `context_management` and whatever a
newer client sends), the message it answers, its stream events and its error shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from gateway.protocol.openai import Count, Fraction, Tokens

Temperature = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]  # Anthropic's range


class Block(msgspec.Struct, frozen=True):
    """A content block: `text`, `image`, `tool_use`, `tool_result`, `thinking`, `document`...
    (one struct: what a type does not use stays None)."""

    type: str
    text: str | None = None
    source: dict[str, Any] | None = None  # an image's or document's
    id: str | None = None  # a tool_use's
    name: str | None = None
    input: Any = None  # a tool_use's arguments (an object)
    tool_use_id: str | None = None  # a tool_result's
    content: str | list[Block] | None = None
    is_error: bool | None = None
    cache_control: dict[str, Any] | None = None  # a hint: never an error
    thinking: str | None = None


class Message(msgspec.Struct, frozen=True):
    role: str
    content: str | list[Block]


class Tool(msgspec.Struct, frozen=True):
    name: str
    input_schema: dict[str, Any] | None = None
    description: str | None = None
    type: str | None = None  # "custom", or a server tool's type (refused)
    cache_control: dict[str, Any] | None = None


class ToolChoice(msgspec.Struct, frozen=True):
    type: str  # auto, any, tool, none
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(msgspec.Struct, frozen=True):
    user_id: str | None = None


class ThinkingConfig(msgspec.Struct, frozen=True):
    """`thinking`: "enabled" with a budget of thinking tokens (counted in `max_tokens`),
    "disabled", or "adaptive" (the model decides)."""

    type: str
    budget_tokens: Annotated[int, msgspec.Meta(ge=0)] | None = None
    display: str | None = None


class MessagesRequest(msgspec.Struct, frozen=True):
    model: str
    messages: list[Message]
    max_tokens: Tokens
    system: str | list[Block] | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: Temperature | None = None
    top_p: Fraction | None = None
    top_k: Count | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    metadata: Metadata | None = None
    thinking: ThinkingConfig | None = None


class CountTokensRequest(msgspec.Struct, frozen=True):
    model: str
    messages: list[Message]
    system: str | list[Block] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None


class TokenCount(msgspec.Struct):
    input_tokens: int


# ---- the answer ---------------------------------------------------------------------------------


class TextBlock(msgspec.Struct):
    text: str
    type: Literal["text"] = "text"


class ThinkingBlock(msgspec.Struct):
    thinking: str
    signature: str = ""  # Anthropic signs its own; a local model's thinking has none
    type: Literal["thinking"] = "thinking"


class ToolUseBlock(msgspec.Struct):
    id: str
    name: str
    input: dict[str, Any]
    type: Literal["tool_use"] = "tool_use"


class Usage(msgspec.Struct):
    input_tokens: int  # not counting those read from the cache (Anthropic's sense)
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class MessageResponse(msgspec.Struct):
    id: str
    model: str
    content: list[ThinkingBlock | TextBlock | ToolUseBlock]
    stop_reason: str | None  # end_turn, max_tokens, stop_sequence, tool_use
    usage: Usage
    stop_sequence: str | None = None
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"


class Delta(msgspec.Struct, omit_defaults=True):
    """A content block's delta (`text_delta`, `input_json_delta`) or the message's
    (`stop_reason`, `stop_sequence`: both always sent)."""

    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None  # a thinking_delta's


class MessageDelta(msgspec.Struct):
    stop_reason: str | None
    stop_sequence: str | None = None


class DeltaUsage(msgspec.Struct):
    output_tokens: int
    input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class StreamEvent(msgspec.Struct, omit_defaults=True):
    """One server-sent event; `type` names it (and its `event:` line)."""

    type: str
    message: MessageResponse | None = None
    index: int | None = None
    content_block: ThinkingBlock | TextBlock | ToolUseBlock | None = None
    delta: Delta | MessageDelta | None = None
    usage: DeltaUsage | None = None
    error: ErrorBody | None = None


class ErrorBody(msgspec.Struct):
    type: str  # invalid_request_error, authentication_error, not_found_error, ...
    message: str


class ErrorResponse(msgspec.Struct):
    error: ErrorBody
    type: Literal["error"] = "error"
