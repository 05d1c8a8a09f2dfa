"""OpenAI wire schemas as msgspec Structs: requests (unknown fields ignored) and responses.

Responses keep defaults (OpenAI sends `finish_reason: null`, `refusal: null`); only stream deltas
omit absent fields. No behaviour here but `error_response`, the one builder of OpenAI's error shape
(for HTTP bodies and in-stream frames alike). Plain msgspec: the web layer and the serving layer
both import it, and it imports neither.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

# every number is bounded at the edge: nothing out of range reaches the engine (or its wire)
Tokens = Annotated[int, msgspec.Meta(ge=1, le=1 << 31)]
Count = Annotated[int, msgspec.Meta(ge=0, le=1 << 31)]
Seed = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]  # int64, as OpenAI
Temperature = Annotated[float, msgspec.Meta(ge=0.0, le=2.0)]
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Penalty = Annotated[float, msgspec.Meta(ge=-2.0, le=2.0)]
RepeatPenalty = Annotated[float, msgspec.Meta(ge=0.0, le=10.0)]
Choices = Annotated[int, msgspec.Meta(ge=1, le=128)]


# ---- requests -------------------------------------------------------------------------------


class ContentPart(msgspec.Struct, frozen=True):
    type: str
    text: str | None = None


class ChatMessage(msgspec.Struct, frozen=True):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(msgspec.Struct, frozen=True):
    include_usage: bool = False


class JsonSchemaFormat(msgspec.Struct, frozen=True):
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class ResponseFormat(msgspec.Struct, frozen=True):
    type: str
    json_schema: JsonSchemaFormat | None = None


class SamplingFields(msgspec.Struct, frozen=True):
    """Fields shared by chat and text completions (OpenAI's plus llama.cpp's common extras)."""

    model: str
    max_tokens: Tokens | None = None
    temperature: Temperature | None = None
    top_p: Fraction | None = None
    top_k: Count | None = None
    min_p: Fraction | None = None
    repeat_penalty: RepeatPenalty | None = None
    n: Choices | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: Seed | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    user: str | None = None
    prompt_cache_key: str | None = None
    ignore_eos: bool | None = False
    min_tokens: Count | None = 0
    response_format: ResponseFormat | None = None


class ChatCompletionRequest(SamplingFields, frozen=True):
    messages: list[ChatMessage] = []
    max_completion_tokens: Tokens | None = None


class CompletionRequest(SamplingFields, frozen=True):
    prompt: str | list[str | int] | None = None  # text, [text], or token ids
    suffix: str | None = None  # text after the insertion point: fill-in-the-middle


# ---- responses ------------------------------------------------------------------------------


class PromptTokensDetails(msgspec.Struct):
    cached_tokens: int = 0


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class AssistantMessage(msgspec.Struct):
    content: str | None
    role: Literal["assistant"] = "assistant"
    refusal: None = None


class ChatChoice(msgspec.Struct):
    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    object: Literal["chat.completion"] = "chat.completion"
    system_fingerprint: str | None = None


class ChatDelta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None


class ChatChunkChoice(msgspec.Struct):
    index: int
    delta: ChatDelta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChatChunkChoice]
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    system_fingerprint: str | None = None
    usage: Usage | None = None


class CompletionChoice(msgspec.Struct):
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: None = None


class Completion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    object: Literal["text_completion"] = "text_completion"
    system_fingerprint: str | None = None


class ModelCard(msgspec.Struct):
    id: str
    created: int
    owned_by: str = "gateway"
    object: Literal["model"] = "model"
    status: dict[str, Any] | None = None  # state and placement of each replica


class ModelList(msgspec.Struct):
    data: list[ModelCard]
    object: Literal["list"] = "list"


class ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(msgspec.Struct):
    error: ErrorBody


def error_response(message: str, type_: str, code: str | None = None,
                   param: str | None = None) -> ErrorResponse:
    """`{"error": {"message", "type", "param", "code"}}`."""
    return ErrorResponse(ErrorBody(message, type_, param, code))
