"""OpenAI's Responses API (`POST /v1/responses`) as msgspec Structs: the request (unknown fields
ignored) and the response object and its stream events. Plain msgspec, as `wire`."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from gateway.protocol.openai import Fraction, Temperature, Tokens


class InputText(msgspec.Struct, frozen=True):
    type: str  # input_text, output_text
    text: str | None = None


class InputItem(msgspec.Struct, frozen=True):
    """A message (role and content), a function call the model made, its output, or a
    reasoning item an earlier response returned (its `content` or `summary` texts)."""

    type: str = "message"  # message, function_call, function_call_output, reasoning
    role: str | None = None
    content: str | list[InputText] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    summary: list[InputText] | None = None  # a reasoning item's


class FunctionTool(msgspec.Struct, frozen=True):
    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunctionChoice(msgspec.Struct, frozen=True):
    type: str
    name: str


class ReasoningParam(msgspec.Struct, frozen=True):
    """`reasoning`: how hard a thinking model thinks (`effort`); summaries are not made."""

    effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    summary: str | None = None


class ResponsesRequest(msgspec.Struct, frozen=True):
    model: str
    input: str | list[InputItem] = ""
    instructions: str | None = None
    max_output_tokens: Tokens | None = None
    temperature: Temperature | None = None
    top_p: Fraction | None = None
    stream: bool = False
    previous_response_id: str | None = None
    store: bool = True
    tools: list[FunctionTool] | None = None
    tool_choice: str | NamedFunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    reasoning: ReasoningParam | None = None


# ---- the response -----------------------------------------------------------------------------


class OutputText(msgspec.Struct):
    text: str
    type: Literal["output_text"] = "output_text"
    annotations: list[Any] = []
    logprobs: list[Any] = []  # required by the spec, even empty


class OutputMessage(msgspec.Struct):
    id: str
    content: list[OutputText]
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: str = "completed"


class ReasoningText(msgspec.Struct):
    text: str
    type: Literal["reasoning_text"] = "reasoning_text"


class ReasoningItem(msgspec.Struct):
    """A thinking model's reasoning, as text (no summaries, nothing encrypted)."""

    id: str
    content: list[ReasoningText]
    summary: list[Any] = []
    type: Literal["reasoning"] = "reasoning"
    status: str = "completed"


class FunctionCall(msgspec.Struct):
    id: str
    call_id: str
    name: str
    arguments: str
    type: Literal["function_call"] = "function_call"
    status: str = "completed"


OutputItem = OutputMessage | FunctionCall | ReasoningItem


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(msgspec.Struct, frozen=True):
    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens_details: OutputTokensDetails = OutputTokensDetails()


class IncompleteDetails(msgspec.Struct):
    reason: str


class TextFormat(msgspec.Struct, frozen=True):
    format: dict[str, str] = msgspec.field(default_factory=lambda: {"type": "text"})


class ReasoningEcho(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None


class Response(msgspec.Struct):
    id: str
    created_at: int
    model: str
    status: str  # in_progress, completed, incomplete
    output: list[OutputItem]
    usage: ResponseUsage | msgspec.UnsetType  # absent while in progress (never null)
    object: Literal["response"] = "response"
    previous_response_id: str | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    tools: list[dict[str, Any]] = []
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    incomplete_details: IncompleteDetails | None = None
    error: None = None
    metadata: dict[str, str] = {}
    store: bool = True
    text: TextFormat = TextFormat()
    truncation: str = "disabled"
    user: str | msgspec.UnsetType = msgspec.UNSET  # a string or absent (never null)
    reasoning: ReasoningEcho | msgspec.UnsetType = msgspec.UNSET  # the request's, when it had one


Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class StreamEvent(msgspec.Struct):
    """One typed event of a streamed response; which fields it carries depends on its type (the
    others are absent, never null)."""

    type: str
    sequence_number: int
    response: Response | Unset = UNSET
    output_index: int | Unset = UNSET
    content_index: int | Unset = UNSET
    item_id: str | Unset = UNSET
    item: OutputItem | Unset = UNSET
    part: OutputText | ReasoningText | Unset = UNSET
    delta: str | Unset = UNSET
    text: str | Unset = UNSET
    name: str | Unset = UNSET  # a function call's, when its arguments are done
    arguments: str | Unset = UNSET
    logprobs: list[Any] | Unset = UNSET  # the text events': [] (none asked)
    code: str | None | Unset = UNSET  # an error event's: code, message, param (these may be null)
    message: str | Unset = UNSET
    param: str | None | Unset = UNSET


