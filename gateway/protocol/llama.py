"""llama.cpp's own server routes, as msgspec Structs: `/infill`, `/completion`, `/tokenize`,
`/detokenize` (and what `/props` says). What llama.vscode, llama.vim and other llama.cpp-speaking
tools send and read, field for field (llama.cpp's tools/server: server-context.cpp, server-task.cpp).

Requests ignore unknown fields (`id_slot`, `n_indent`, `lora`, ...); `samplers` and
`cache_prompt` are accepted and have no effect (the sampler order is ours; prompts are always
cached). Numbers are bounded at the edge, as in `wire`. Plain msgspec: no behaviour.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from gateway.protocol.openai import Count, Fraction, Penalty, RepeatPenalty

NPredict = Annotated[int, msgspec.Meta(ge=-1, le=1 << 31)]  # -1: until the context is full
Milliseconds = Annotated[int, msgspec.Meta(ge=-1, le=86_400_000)]  # <= 0: no limit
NativeTemperature = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
TokenId = Annotated[int, msgspec.Meta(ge=0, le=(1 << 31) - 1)]
NativeSeed = int  # int64 or uint64 (Tabby sends a u64); msgspec refuses what is beyond


class NativeSampling(msgspec.Struct, frozen=True):
    """Fields `/completion` and `/infill` share, with llama-server's defaults where absent."""

    model: str | None = None  # None: the first model of the config
    n_predict: NPredict = -1
    temperature: NativeTemperature | None = None  # 0.8
    top_k: Count | None = None  # 40
    top_p: Fraction | None = None  # 0.95
    min_p: Fraction | None = None  # 0.05
    seed: NativeSeed | None = None  # -1: random
    repeat_penalty: RepeatPenalty | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    ignore_eos: bool = False
    cache_prompt: bool = True  # accepted; every prompt is cached anyway
    samplers: list[str] | str | None = None  # accepted and ignored
    t_max_prompt_ms: Milliseconds | None = None  # no first token by then: end with none
    t_max_predict_ms: Milliseconds | None = None  # answering this long: end at the next newline
    prompt_cache_key: str | None = None  # as on /v1: names the conversation
    # the most tokens proposed ahead per step (speculation); 0: none
    speculative_n_max: Count | None = msgspec.field(default=None, name="speculative.n_max")
    # only these fields of the result, each a path ("timings/prompt_n") kept as a flat key, as
    # llama.cpp answers (llama.vim reads its timings so)
    response_fields: list[str] = []


class ExtraChunk(msgspec.Struct, frozen=True):
    """A piece of another file the editor sends as context (llama.vscode's ring buffer)."""

    text: str
    filename: str = "tmp"


class InfillRequest(NativeSampling, frozen=True):
    input_prefix: str | None = None  # required: the text before the cursor
    input_suffix: str | None = None  # required: the text after it (may be "")
    input_extra: list[ExtraChunk] = []
    prompt: str = ""  # what was typed on the cursor's line, after the prefix


class CompletionNativeRequest(NativeSampling, frozen=True):
    prompt: str | list[TokenId] | None = None


class TokenizeRequest(msgspec.Struct, frozen=True):
    content: str
    model: str | None = None
    add_special: bool = False
    parse_special: bool = True
    with_pieces: bool = False


class DetokenizeRequest(msgspec.Struct, frozen=True):
    tokens: list[TokenId] = []
    model: str | None = None


# ---- responses ------------------------------------------------------------------------------


class Timings(msgspec.Struct, frozen=True):
    cache_n: int  # prompt tokens whose KV was reused
    prompt_n: int  # prompt tokens computed
    prompt_ms: float
    prompt_per_token_ms: float
    prompt_per_second: float
    predicted_n: int
    predicted_ms: float
    predicted_per_token_ms: float
    predicted_per_second: float


class NativeChunk(msgspec.Struct, frozen=True):
    """A streamed piece of text (llama.cpp's partial result)."""

    content: str
    index: int = 0
    tokens: list[int] = []
    stop: bool = False
    id_slot: int = -1
    tokens_predicted: int = 0
    tokens_evaluated: int = 0


class NativeResult(msgspec.Struct, frozen=True):
    """The whole answer, or a stream's last frame (then `content` is empty)."""

    content: str
    model: str
    tokens_predicted: int
    tokens_evaluated: int  # the prompt's tokens
    tokens_cached: int  # tokens in the KV cache at the end: prompt and answer
    stop_type: str  # "eos", "word", "limit" (n_predict or a time limit), "none"
    timings: Timings
    index: int = 0
    tokens: list[int] = []
    id_slot: int = -1
    stop: bool = True
    has_new_line: bool = False
    truncated: bool = False
    stopping_word: str = ""


class TokenPiece(msgspec.Struct, frozen=True):
    id: int
    piece: str | list[int]  # bytes that are not whole UTF-8 characters: their values


class TokenizeResponse(msgspec.Struct, frozen=True):
    tokens: list[int] | list[TokenPiece]


class DetokenizeResponse(msgspec.Struct, frozen=True):
    content: str


class AppliedTemplate(msgspec.Struct, frozen=True):
    """`POST /apply-template`: a chat request's prompt as the model's template renders it."""

    prompt: str
