"""Ollama's HTTP API (`/api/chat`, `/api/generate`, `/api/embed`, `/api/tags`, ...) as msgspec
Structs: requests (unknown fields and options ignored, as Ollama does) and answers. Durations are
nanoseconds and times RFC 3339, as Ollama's; metrics are integers, never null."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.protocol.openai import Count, Fraction, Penalty, RepeatPenalty, Seed, Temperature

KeepAlive = float | int | str | None  # seconds, or a Go duration ("5m", "300s"); < 0: forever


class Options(msgspec.Struct, frozen=True):
    """The sampling options the gateway honours; load-time ones (`num_ctx`, `num_gpu`, ...) are
    the config's business and ignored here, as unknown ones."""

    temperature: Temperature | None = None
    top_p: Fraction | None = None
    top_k: Count | None = None
    min_p: Fraction | None = None
    seed: Seed | None = None
    num_predict: int | None = None  # -1: no limit
    stop: list[str] | None = None
    repeat_penalty: RepeatPenalty | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None


class ToolFunctionCall(msgspec.Struct, frozen=True):
    name: str
    arguments: dict[str, Any] = {}


class ToolCall(msgspec.Struct, frozen=True):
    function: ToolFunctionCall
    id: str | None = None


class Message(msgspec.Struct, frozen=True):
    role: str
    content: str | None = ""
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None  # Open WebUI's; Home Assistant's results come in order
    tool_name: str | None = None
    thinking: str | None = None


class ToolFunction(msgspec.Struct, frozen=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(msgspec.Struct, frozen=True):
    function: ToolFunction
    type: str = "function"


class ChatRequest(msgspec.Struct, frozen=True):
    model: str
    messages: list[Message] = []
    tools: list[Tool] | None = None
    format: str | dict[str, Any] | None = None  # "json", or a JSON schema
    options: Options | None = None
    stream: bool = True
    keep_alive: KeepAlive = None
    system: str | None = None  # Open WebUI sends it beside the messages
    think: bool | str | None = None


class GenerateRequest(msgspec.Struct, frozen=True):
    model: str
    prompt: str = ""
    suffix: str | None = None  # fill-in-the-middle
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[str] | None = None
    format: str | dict[str, Any] | None = None
    options: Options | None = None
    stream: bool = True
    keep_alive: KeepAlive = None
    think: bool | str | None = None


class EmbedRequest(msgspec.Struct, frozen=True):
    model: str
    input: str | list[str] = []
    dimensions: int | None = None
    truncate: bool = True
    options: Options | None = None
    keep_alive: KeepAlive = None


class EmbeddingsRequest(msgspec.Struct, frozen=True):
    """The older `/api/embeddings`: one prompt, one vector, not normalised."""

    model: str
    prompt: str = ""
    options: Options | None = None
    keep_alive: KeepAlive = None


class ShowRequest(msgspec.Struct, frozen=True):
    model: str | None = None
    name: str | None = None  # older clients'
    verbose: bool = False


# ---- answers ----------------------------------------------------------------------------------


class OutMessage(msgspec.Struct):
    content: str = ""
    role: str = "assistant"
    tool_calls: list[ToolCall] | msgspec.UnsetType = msgspec.UNSET  # absent without calls
    thinking: str | msgspec.UnsetType = msgspec.UNSET  # a thinking model's, apart


class Ending(msgspec.Struct, omit_defaults=True, kw_only=True):
    """What the last chunk (`done`) carries: why it ended, and the metrics (ns, counts)."""

    done_reason: str | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class ChatChunk(Ending, omit_defaults=True):
    model: str
    created_at: str
    message: OutMessage  # every chunk has one (clients read it unconditionally)
    done: bool


class GenerateChunk(Ending, omit_defaults=True):
    model: str
    created_at: str
    response: str
    done: bool
    thinking: str | None = None


class Details(msgspec.Struct):
    format: str
    family: str
    families: list[str]
    parameter_size: str
    quantization_level: str
    parent_model: str = ""


class ModelEntry(msgspec.Struct, omit_defaults=True):
    name: str
    model: str
    size: int
    digest: str
    details: Details
    modified_at: str | None = None  # /api/tags'
    expires_at: str | None = None  # /api/ps'
    size_vram: int | None = None
    context_length: int | None = None


class ModelList(msgspec.Struct):
    models: list[ModelEntry]


class ShowResponse(msgspec.Struct):
    modelfile: str
    parameters: str
    template: str
    details: Details
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str


class EmbedResponse(msgspec.Struct):
    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int
    prompt_eval_count: int


class EmbeddingResponse(msgspec.Struct):
    embedding: list[float]
