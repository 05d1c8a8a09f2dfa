"""llama.cpp's own routes, served: `/infill`, `/completion`, `/tokenize`, `/detokenize`, `/props`.

Each honours the model a request names, else the config's first model. `/infill` and
`/completion` go through the same engines as the OpenAI routes (prefix reuse, scheduling,
cancellation when the client hangs up); only the request and response shapes are llama.cpp's,
with llama-server's sampling defaults where a field is absent. Knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import msgspec

from gateway import llama_wire as native
from gateway import wire
from gateway.engine.llama_backend import LlamaModel
from gateway.engine.session_key import named
from gateway.engine.types import EngineEvent, Failed, Finished, FinishReason, GenerationRequest, Queued, SamplingParams, TextDelta
from gateway.errors import ContextLengthExceeded, InvalidRequest
from gateway.serving import responses, waking
from gateway.serving.lifecycle import State
from gateway.serving.completions import unless_hung_up
from gateway.serving.failures import error_frame
from gateway.engine.hole_end import Hole, hole_around
from gateway.serving.infill import ExtraText, FimTokens, hole_in_prompt, infill_tokens
from gateway.serving.model_registry import ModelRegistry, ServedModel
from gateway.serving.request_builder import MAX_CHARS_PER_TOKEN, room_after

# llama-server's sampling defaults (common/common.h), used where a request leaves a field out
DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P, DEFAULT_MIN_P = 0.8, 40, 0.95, 0.05


def model_for(registry: ModelRegistry, name: str | None) -> ServedModel:
    return registry.get(name) if name else registry.models[0]


# ---- requests ---------------------------------------------------------------------------------


def _sampling(body: native.NativeSampling) -> SamplingParams:
    return SamplingParams(
        temperature=DEFAULT_TEMPERATURE if body.temperature is None else body.temperature,
        top_k=DEFAULT_TOP_K if body.top_k is None else body.top_k,
        top_p=DEFAULT_TOP_P if body.top_p is None else body.top_p,
        min_p=DEFAULT_MIN_P if body.min_p is None else body.min_p,
        seed=None if body.seed is None or body.seed < 0 else body.seed,
        presence_penalty=body.presence_penalty or 0.0,
        frequency_penalty=body.frequency_penalty or 0.0,
        repeat_penalty=1.0 if body.repeat_penalty is None else body.repeat_penalty,
    )


def _seconds(ms: int | None) -> float | None:
    return ms / 1000 if ms is not None and ms > 0 else None


def _check_size(loaded: ServedModel, chars: int, param: str) -> None:
    if chars > loaded.n_ctx_seq * MAX_CHARS_PER_TOKEN:
        raise ContextLengthExceeded(
            f"This model's context holds {loaded.n_ctx_seq} tokens per request, and your "
            f"{param} is {chars} characters: more than that can hold.", param=param)


def _infill_prompt(loaded: ServedModel, body: native.InfillRequest) -> list[int]:
    vocab = loaded.tokenizer
    assert vocab is not None  # a ready model has its vocabulary
    if vocab.fim_tokens is None:
        raise InvalidRequest(
            f"Model `{loaded.id}` has no fill-in-the-middle tokens, so it cannot serve /infill; "
            "use a code model that has them (Qwen2.5-Coder, CodeGemma, StarCoder2, ...)",
            param="model")
    for field in ("input_prefix", "input_suffix"):
        if getattr(body, field) is None:
            raise InvalidRequest(f"`{field}` is required", param=field)
    prefix, suffix = body.input_prefix or "", body.input_suffix or ""
    _check_size(loaded, len(prefix) + len(suffix) + len(body.prompt)
                + sum(len(c.text) + len(c.filename) for c in body.input_extra), "input_prefix")
    pre, suf, mid = vocab.fim_tokens
    fim = FimTokens(pre, suf, mid, rep=vocab.fim_rep if vocab.fim_rep >= 0 else None,
                    sep=vocab.fim_sep if vocab.fim_sep >= 0 else None)
    bos = vocab.bos_token if vocab.add_bos and vocab.bos_token >= 0 else None
    extra = [ExtraText(c.filename, c.text) for c in body.input_extra]
    return infill_tokens(vocab, fim, bos, prefix, suffix, extra, body.prompt, loaded.n_ctx_seq,
                         body.n_predict)


def _completion_prompt(loaded: ServedModel, body: native.CompletionNativeRequest) -> list[int]:
    vocab = loaded.tokenizer
    assert vocab is not None
    if body.prompt is None:
        raise InvalidRequest("`prompt` is required", param="prompt")
    if isinstance(body.prompt, str):
        _check_size(loaded, len(body.prompt), "prompt")
        return vocab.tokenize(body.prompt, add_special=True)
    bad = [i for i, t in enumerate(body.prompt) if t >= vocab.n_vocab]
    if bad:
        raise InvalidRequest(f"Token id {body.prompt[bad[0]]} is out of the vocabulary",
                             param=f"prompt[{bad[0]}]")
    return list(body.prompt)


def build_native_request(loaded: ServedModel, body: native.InfillRequest | native.CompletionNativeRequest,
                         client: str) -> GenerationRequest:
    hole: Hole | None = None
    vocab = loaded.tokenizer
    assert vocab is not None
    if isinstance(body, native.InfillRequest):
        tokens, param = _infill_prompt(loaded, body), "input_prefix"
        hole = hole_around((body.input_prefix or "") + body.prompt, body.input_suffix or "")
    else:
        tokens, param = _completion_prompt(loaded, body), "prompt"
        if isinstance(body.prompt, str):
            hole = hole_in_prompt(vocab, vocab.fim_tokens, body.prompt)
    room = room_after(loaded, tokens, param)
    stop = [body.stop] if isinstance(body.stop, str) else [s for s in body.stop or [] if s]
    return GenerationRequest(
        request_id=uuid.uuid4().hex,
        prompt_tokens=tokens,
        max_tokens=room if body.n_predict < 0 else min(body.n_predict, room),
        sampling=_sampling(body),
        stop=stop,
        ignore_eos=body.ignore_eos,
        session_key=named(client, body.prompt_cache_key) if body.prompt_cache_key else None,
        scope=client,
        # a request for no tokens warms the cache (llama.vim sends it with t_max_prompt_ms 1,
        # which llama.cpp ignores): its prompt is the whole point, so it gets the time it takes
        max_prompt_s=_seconds(body.t_max_prompt_ms) if body.n_predict != 0 else None,
        max_predict_s=_seconds(body.t_max_predict_ms),
        hole=hole,
    )


# ---- responses --------------------------------------------------------------------------------


@dataclass
class Timer:
    """When a request was sent to its engine, got its first text, and ended (perf_counter)."""

    sent: float
    first_text: float | None = None
    ended: float | None = None

    def timings(self, finished: Finished) -> native.Timings:
        ended = self.ended or time.perf_counter()
        first = self.first_text or ended
        prompt_ms, predicted_ms = (first - self.sent) * 1000, (ended - first) * 1000
        prompt_n = finished.prompt_tokens - finished.cached_tokens
        predicted_n = finished.completion_tokens
        return native.Timings(
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


def pick_fields(result: native.NativeResult, paths: list[str]) -> dict[str, object]:
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
           ) -> native.NativeResult:
    return native.NativeResult(
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


NativeStreamItem = (native.NativeChunk | native.NativeResult | dict[str, object]
                    | responses.QueueNotice | responses.LoadingNotice | wire.ErrorResponse)


@dataclass
class NativeStreamed:
    items: AsyncIterator[NativeStreamItem]


async def _timed(events: AsyncIterator[EngineEvent], timer: Timer) -> AsyncIterator[EngineEvent]:
    """The events as they are; the first text's time and the end's into `timer`."""
    async for event in events:
        if isinstance(event, TextDelta) and timer.first_text is None:
            timer.first_text = time.perf_counter()
        elif isinstance(event, Finished):
            timer.ended = time.perf_counter()
        yield event


async def _chunks(model: str, events: AsyncIterator[EngineEvent], timer: Timer,
                  prompt_tokens: int, fields: list[str]) -> AsyncIterator[NativeStreamItem]:
    """Text pieces as llama.cpp's partial results, then its final result; an error is one frame."""
    parts: list[str] = []
    async for event in _timed(events, timer):
        if isinstance(event, TextDelta):
            parts.append(event.text)
            yield native.NativeChunk(content=event.text, tokens_predicted=len(parts),
                                     tokens_evaluated=prompt_tokens)
        elif isinstance(event, Queued) and event.position > 0:
            yield responses.QueueNotice(event.position)
        elif isinstance(event, Failed):
            yield error_frame(event)
            return
        elif isinstance(event, Finished):
            final = result(model, "".join(parts), event, timer, streamed=True)
            yield pick_fields(final, fields) if fields else final
            return


async def complete_native(registry: ModelRegistry,
                          body: native.InfillRequest | native.CompletionNativeRequest,
                          client: str, hung_up: Callable[[], Awaitable[None]]
                          ) -> NativeStreamed | native.NativeResult | dict[str, object]:
    served = model_for(registry, body.model)
    if body.stream and waking.must_wait(served):  # the stream starts now: `: loading` comments
        return NativeStreamed(waking.loading_then(
            served, lambda: _native_items(complete_native(registry, body, client, hung_up))))
    await waking.ready(served, hung_up)
    request = await asyncio.to_thread(build_native_request, served, body, client)
    timer = Timer(sent=time.perf_counter())
    events = await responses.accepted(served.run(request, "infill" if isinstance(body, native.InfillRequest) else "completion"))
    if body.stream:
        return NativeStreamed(_chunks(served.id, events, timer, len(request.prompt_tokens),
                                      body.response_fields))
    text, finished = await unless_hung_up(hung_up, responses.collect(_timed(events, timer)))
    whole = result(served.id, text, finished, timer)
    return pick_fields(whole, body.response_fields) if body.response_fields else whole


async def _native_items(result: Awaitable[object]) -> AsyncIterator[NativeStreamItem]:
    streamed = await result
    assert isinstance(streamed, NativeStreamed)
    return streamed.items


# ---- tokens and properties ------------------------------------------------------------------


async def vocabulary(served: ServedModel) -> LlamaModel:
    """The model's vocabulary: all that tokens need (it stays while the model sleeps); a model
    never loaded (or unloaded, or failed) is woken or refused as for a generation."""
    if served.tokenizer is None or served.state in (State.FAILED, State.UNLOADED):
        await served.wait_ready()
    assert served.tokenizer is not None
    return served.tokenizer


async def tokenize(registry: ModelRegistry, body: native.TokenizeRequest
                   ) -> native.TokenizeResponse:
    served = model_for(registry, body.model)
    vocab = await vocabulary(served)
    _check_size(served, len(body.content), "content")
    tokens = vocab.tokenize(body.content, add_special=body.add_special,
                            parse_special=body.parse_special)
    if not body.with_pieces:
        return native.TokenizeResponse(tokens=tokens)
    pieces = []
    for token in tokens:
        raw = vocab.token_bytes(token, special=True)
        try:
            piece: str | list[int] = raw.decode("utf-8")
        except UnicodeDecodeError:  # part of a character: its bytes, as llama.cpp sends them
            piece = list(raw)
        pieces.append(native.TokenPiece(id=token, piece=piece))
    return native.TokenizeResponse(tokens=pieces)


async def detokenize(registry: ModelRegistry, body: native.DetokenizeRequest
                     ) -> native.DetokenizeResponse:
    served = model_for(registry, body.model)
    vocab = await vocabulary(served)
    bad = [i for i, t in enumerate(body.tokens) if t >= vocab.n_vocab]
    if bad:
        raise InvalidRequest(f"Token id {body.tokens[bad[0]]} is out of the vocabulary",
                             param=f"tokens[{bad[0]}]")
    text = b"".join(vocab.token_bytes(t, special=True) for t in body.tokens)  # as llama.cpp
    return native.DetokenizeResponse(content=text.decode("utf-8", errors="replace"))


async def props(registry: ModelRegistry, name: str | None) -> dict[str, object]:
    """What llama-server's GET /props says that clients read: the model, the context per
    slot, the slots, the template, and (ours) what fill-in-the-middle the model supports."""
    served = model_for(registry, name)
    vocab = await vocabulary(served)
    context = served.config.context
    return {
        "default_generation_settings": {
            "n_ctx": served.n_ctx_seq,
            "params": {"temperature": DEFAULT_TEMPERATURE, "top_k": DEFAULT_TOP_K,
                       "top_p": DEFAULT_TOP_P, "min_p": DEFAULT_MIN_P, "n_predict": -1},
        },
        "total_slots": context.parallel * max(1, len(served.replicas)),
        "model_alias": served.id,
        "model_path": served.id,
        "modalities": {"vision": False, "video": False, "audio": False},
        "chat_template": served.template.source if served.template is not None else "",
        "bos_token": vocab.bos_text,
        "eos_token": vocab.eos_text,
        "build_info": "gateway",
        "is_sleeping": False,
        "infill": {"supported": vocab.fim_tokens is not None,
                   "repo_level": vocab.fim_rep >= 0 and vocab.fim_sep >= 0},
    }
