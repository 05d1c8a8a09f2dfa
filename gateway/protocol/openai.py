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


class ToolCallFunction(msgspec.Struct, frozen=True):
    name: str
    arguments: str  # JSON text


class ToolCall(msgspec.Struct, frozen=True):
    """A call an assistant made: in a request's history, and in a response."""

    id: str
    function: ToolCallFunction
    type: Literal["function"] = "function"


class ChatMessage(msgspec.Struct, frozen=True):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # an assistant's calls
    tool_call_id: str | None = None  # a tool result: the call it answers
    reasoning_content: str | None = None  # an assistant's thinking, as the answer gave it


class FunctionDefinition(msgspec.Struct, frozen=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None  # JSON schema of the arguments
    strict: bool | None = None


class Tool(msgspec.Struct, frozen=True):
    type: str
    function: FunctionDefinition


class NamedFunction(msgspec.Struct, frozen=True):
    name: str


class NamedToolChoice(msgspec.Struct, frozen=True):
    type: str
    function: NamedFunction


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
    grammar: str | None = None  # llama-server's: GBNF the answer follows
    # llama-server's: the most tokens proposed ahead per step (speculation); 0: none
    speculative_n_max: Count | None = msgspec.field(default=None, name="speculative.n_max")
    logit_bias: dict[str, Annotated[float, msgspec.Meta(ge=-100, le=100)]] | None = None


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high"]


class ChatCompletionRequest(SamplingFields, frozen=True):
    messages: list[ChatMessage] = []
    max_completion_tokens: Tokens | None = None
    tools: list[Tool] | None = None
    tool_choice: str | NamedToolChoice | None = None  # "none", "auto", "required" or a function
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None  # with logprobs
    reasoning_format: str | None = None  # llama-server's: "none" keeps thinking in `content`
    reasoning_effort: ReasoningEffort | None = None
    reasoning_budget: Annotated[int, msgspec.Meta(ge=-1)] | None = None  # thinking tokens; -1: any
    chat_template_kwargs: dict[str, Any] | None = None  # variables for the chat template


class CompletionRequest(SamplingFields, frozen=True):
    prompt: str | list[str | int] | None = None  # text, [text], or token ids
    suffix: str | None = None  # text after the insertion point: fill-in-the-middle
    logprobs: Annotated[int, msgspec.Meta(ge=0, le=5)] | None = None  # and this many alternatives


class EmbeddingRequest(msgspec.Struct, frozen=True):
    model: str
    # a text, texts, a token array, or token arrays
    input: str | list[str | int | list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, msgspec.Meta(ge=1)] | None = None  # only the model's own
    user: str | None = None


# ---- responses ------------------------------------------------------------------------------


class PromptTokensDetails(msgspec.Struct):
    cached_tokens: int = 0


class CompletionTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails | msgspec.UnsetType = msgspec.UNSET


class AssistantMessage(msgspec.Struct):
    content: str | None
    role: Literal["assistant"] = "assistant"
    refusal: None = None
    tool_calls: list[ToolCall] | msgspec.UnsetType = msgspec.UNSET  # only when it calls tools
    reasoning_content: str | msgspec.UnsetType = msgspec.UNSET  # only when the model thought


class FunctionDelta(msgspec.Struct, omit_defaults=True):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(msgspec.Struct, omit_defaults=True):
    """A streamed piece of a call: `index` always; `id`, `type`, `name` on a call's first piece."""

    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionDelta | None = None


class TopLogprob(msgspec.Struct):
    token: str
    logprob: float
    bytes: list[int] | None


class ChatTokenLogprob(msgspec.Struct):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(msgspec.Struct):
    content: list[ChatTokenLogprob] | None
    refusal: None = None


class CompletionLogprobs(msgspec.Struct):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]


class ChatChoice(msgspec.Struct):
    index: int
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    object: Literal["chat.completion"] = "chat.completion"
    system_fingerprint: str = ""


class ChatDelta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(msgspec.Struct):
    index: int
    delta: ChatDelta
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[ChatChunkChoice]
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    system_fingerprint: str = ""
    usage: Usage | None = None


class CompletionChoice(msgspec.Struct):
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: CompletionLogprobs | None = None


class Completion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    object: Literal["text_completion"] = "text_completion"
    system_fingerprint: str = ""


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


class Embedding(msgspec.Struct):
    index: int
    embedding: list[float] | str  # base64: little-endian float32s
    object: Literal["embedding"] = "embedding"


class EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(msgspec.Struct):
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    object: Literal["list"] = "list"
