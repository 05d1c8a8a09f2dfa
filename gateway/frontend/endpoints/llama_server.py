"""llama.cpp's own routes, served: `/infill`, `/completion`, `/tokenize`, `/detokenize`, `/props`.

Each honours the model a request names, else the config's first model. `/infill` and
`/completion` go through the same engines as the OpenAI routes (prefix reuse, scheduling,
cancellation when the client hangs up); only the request and response shapes are llama.cpp's,
with llama-server's sampling defaults where a field is absent. Knows nothing of HTTP.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import msgspec

from gateway.engine.events import EngineEvent, Finished, FinishReason, TextDelta
from gateway.errors import GatewayError
from gateway.fleet.lifecycle import State
from gateway.fleet.registry import ModelRegistry
from gateway.fleet.served_model import ServedModel
from gateway.frontend.endpoint import Streamed, built, serve, started
from gateway.frontend.error_frames import openai_error
from gateway.frontend.event_stream import LoadingNotice, QueueNotice, collect, rendered
from gateway.frontend.prompt import checks
from gateway.frontend.prompt.chat_template import template_for
from gateway.frontend.prompt.completion_request import chat_prompt
from gateway.frontend.prompt.llama_request import (
    DEFAULT_MIN_P,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_K,
    DEFAULT_TOP_P,
    build_native_request,
)
from gateway.frontend.tokenizer import Vocabulary
from gateway.protocol import llama, openai


def model_for(registry: ModelRegistry, name: str | None) -> ServedModel:
    return registry.get(name) if name else registry.models[0]


# ---- responses --------------------------------------------------------------------------------


@dataclass
class Timer:
    """When a request was sent to its engine, got its first text, and ended (perf_counter)."""

    sent: float
    first_text: float | None = None
    ended: float | None = None

    def timings(self, finished: Finished) -> llama.Timings:
        ended = self.ended or time.perf_counter()
        first = self.first_text or ended
        prompt_ms, predicted_ms = (first - self.sent) * 1000, (ended - first) * 1000
        prompt_n = finished.prompt_tokens - finished.cached_tokens
        predicted_n = finished.completion_tokens
        return llama.Timings(
            cache_n=finished.cached_tokens, prompt_n=prompt_n, prompt_ms=prompt_ms,
            prompt_per_token_ms=prompt_ms / max(prompt_n, 1),
            prompt_per_second=prompt_n * 1000 / prompt_ms if prompt_ms > 0 else 0.0,
            predicted_n=predicted_n, predicted_ms=predicted_ms,
            predicted_per_token_ms=predicted_ms / max(predicted_n, 1),
            predicted_per_second=predicted_n * 1000 / predicted_ms if predicted_ms > 0 else 0.0)


def _stop_type(finished: Finished) -> str:
    if finished.reason is FinishReason.STOP:
        return "word" if finished.stopping_word else "eos"
    return "limit" if finished.reason is FinishReason.LENGTH else "none"


def pick_fields(result: llama.NativeResult, paths: list[str]) -> dict[str, object]:
    """Only the named fields, each path ("timings/prompt_n") a flat key, as llama.cpp's
    `json_get_nested_values`; a path that names nothing is left out."""
    whole = msgspec.to_builtins(result)
    picked: dict[str, object] = {}
    for path in paths:
        value: object = whole
        for key in path.split("/"):
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
        else:
            picked[path] = value
    return picked


def result(model: str, text: str, finished: Finished, timer: Timer, streamed: bool = False
           ) -> llama.NativeResult:
    return llama.NativeResult(
        content="" if streamed else text,
        model=model,
        tokens_predicted=finished.completion_tokens,
        tokens_evaluated=finished.prompt_tokens,
        tokens_cached=finished.prompt_tokens + finished.completion_tokens,
        stop_type=_stop_type(finished),
        timings=timer.timings(finished),
        has_new_line="\n" in text,
        stopping_word=finished.stopping_word,
    )


NativeStreamItem = (llama.NativeChunk | llama.NativeResult | dict[str, object] | QueueNotice
                    | LoadingNotice | openai.ErrorResponse)
Body = llama.InfillRequest | llama.CompletionNativeRequest


async def _timed(events: AsyncIterator[EngineEvent], timer: Timer) -> AsyncIterator[EngineEvent]:
    """The events as they are; the first text's time and the end's into `timer`."""
    async for event in events:
        if isinstance(event, TextDelta) and timer.first_text is None:
            timer.first_text = time.perf_counter()
        elif isinstance(event, Finished):
            timer.ended = time.perf_counter()
        yield event


@dataclass
class NativeChunks:
    """Text pieces as llama.cpp's partial results, then its final result (only `fields` of it,
    when asked); an error is one frame."""

    model: str
    timer: Timer
    prompt_tokens: int
    fields: list[str]

    def __post_init__(self) -> None:
        self.parts: list[str] = []

    def opening(self) -> Iterable[NativeStreamItem]:
        return ()

    def text(self, delta: TextDelta) -> Iterable[NativeStreamItem]:
        self.parts.append(delta.text)
        yield llama.NativeChunk(content=delta.text, tokens_predicted=len(self.parts),
                                tokens_evaluated=self.prompt_tokens)

    def finished(self, finished: Finished) -> Iterable[NativeStreamItem]:
        final = result(self.model, "".join(self.parts), finished, self.timer, streamed=True)
        yield pick_fields(final, self.fields) if self.fields else final

    def failed(self, error: GatewayError) -> Iterable[NativeStreamItem]:
        yield openai_error(error)


async def complete_native(registry: ModelRegistry, body: Body, client: str
                          ) -> Streamed[NativeStreamItem] | llama.NativeResult | dict[str, object]:
    served = model_for(registry, body.model)
    return await serve(served, body.stream, lambda: _answer(served, body, client), openai_error)


async def _answer(served: ServedModel, body: Body, client: str
                  ) -> Streamed[NativeStreamItem] | llama.NativeResult | dict[str, object]:
    request = await built(build_native_request, served, body, client)
    timer = Timer(sent=time.perf_counter())
    route = "infill" if isinstance(body, llama.InfillRequest) else "completion"
    events = _timed(await started(served, request, route), timer)
    if body.stream:
        renderer = NativeChunks(served.id, timer, len(request.prompt_tokens), body.response_fields)
        return Streamed(rendered(events, renderer))
    text, finished = await collect(events)
    whole = result(served.id, text, finished, timer)
    return pick_fields(whole, body.response_fields) if body.response_fields else whole


# ---- tokens and properties ------------------------------------------------------------------


async def vocabulary(served: ServedModel) -> Vocabulary:
    """The model's vocabulary: all that tokens need (it stays while the model sleeps); a model
    never loaded (or unloaded, or failed) is woken or refused as for a generation."""
    if served.tokenizer is None or served.state in (State.FAILED, State.UNLOADED):
        await served.ensure_ready()
    assert served.tokenizer is not None
    return served.tokenizer


async def tokenize(registry: ModelRegistry, body: llama.TokenizeRequest
                   ) -> llama.TokenizeResponse:
    served = model_for(registry, body.model)
    vocab = await vocabulary(served)
    checks.text_fits(served.n_ctx_seq, len(body.content), "content")
    tokens = vocab.tokenize(body.content, add_special=body.add_special,
                            parse_special=body.parse_special)
    if not body.with_pieces:
        return llama.TokenizeResponse(tokens=tokens)
    pieces = []
    for token in tokens:
        raw = vocab.token_bytes(token, special=True)
        try:
            piece: str | list[int] = raw.decode("utf-8")
        except UnicodeDecodeError:  # part of a character: its bytes, as llama.cpp sends them
            piece = list(raw)
        pieces.append(llama.TokenPiece(id=token, piece=piece))
    return llama.TokenizeResponse(tokens=pieces)


async def apply_template(registry: ModelRegistry, body: openai.ChatCompletionRequest
                         ) -> llama.AppliedTemplate:
    """The prompt a chat request would get (llama-server's `/apply-template`): its template's
    switches (`reasoning_effort`, `chat_template_kwargs`) and tools included."""
    served = model_for(registry, body.model)
    await vocabulary(served)
    prompt = await built(chat_prompt, served, body)
    return llama.AppliedTemplate(prompt=prompt.text)


async def detokenize(registry: ModelRegistry, body: llama.DetokenizeRequest
                     ) -> llama.DetokenizeResponse:
    served = model_for(registry, body.model)
    vocab = await vocabulary(served)
    checks.token_ids(body.tokens, vocab, "tokens", indexed=True)
    text = b"".join(vocab.token_bytes(t, special=True) for t in body.tokens)  # as llama.cpp
    return llama.DetokenizeResponse(content=text.decode("utf-8", errors="replace"))


async def props(registry: ModelRegistry, name: str | None) -> dict[str, object]:
    """What llama-server's GET /props says that clients read: the model, the context per
    slot, the slots, the template, and (ours) what fill-in-the-middle the model supports."""
    served = model_for(registry, name)
    vocab = await vocabulary(served)
    template = template_for(vocab, served.config.chat_template, served.config.chat_template_file)
    context = served.config.context
    return {
        "default_generation_settings": {
            "n_ctx": served.n_ctx_seq,
            "params": {"temperature": DEFAULT_TEMPERATURE, "top_k": DEFAULT_TOP_K,
                       "top_p": DEFAULT_TOP_P, "min_p": DEFAULT_MIN_P, "n_predict": -1},
        },
        "total_slots": context.slots * max(1, len(served.replicas)),
        "model_alias": served.id,
        "model_path": served.id,
        "modalities": {"vision": False, "video": False, "audio": False},
        "chat_template": template.source if template is not None else "",
        "bos_token": vocab.bos_text,
        "eos_token": vocab.eos_text,
        "build_info": "gateway",
        "is_sleeping": False,
        "infill": {"supported": vocab.fim_tokens is not None,
                   "repo_level": vocab.fim_rep >= 0 and vocab.fim_sep >= 0},
    }
