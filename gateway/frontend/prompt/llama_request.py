"""llama.cpp's `/infill` and `/completion` bodies into a validated `GenerationRequest`, with
llama-server's sampling defaults where a field is absent: the fill-in-the-middle prompt (repo
context, prefix, suffix) for `/infill`, text or token ids for `/completion`, and the hole the
answer must not run past.
"""

from __future__ import annotations

import uuid

from gateway.engine.hole_end import Hole, hole_around
from gateway.engine.kv.session_key import named
from gateway.engine.requests import GenerationRequest, SamplingParams
from gateway.errors import InvalidRequest
from gateway.fleet.served_model import ServedModel
from gateway.frontend.prompt import checks
from gateway.frontend.prompt.infill import ExtraText, FimTokens, hole_in_prompt, infill_tokens
from gateway.protocol import llama

# llama-server's sampling defaults (common/common.h), used where a request leaves a field out
DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P, DEFAULT_MIN_P = 0.8, 40, 0.95, 0.05


def _sampling(body: llama.NativeSampling) -> SamplingParams:
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


def _infill_prompt(loaded: ServedModel, body: llama.InfillRequest) -> list[int]:
    vocab = loaded.tokenizer
    assert vocab is not None  # a ready model has its vocabulary
    pre, suf, mid = checks.fim_markers(vocab, loaded.id, "model", "serve /infill")
    for field in ("input_prefix", "input_suffix"):
        if getattr(body, field) is None:
            raise InvalidRequest(f"`{field}` is required", param=field)
    prefix, suffix = body.input_prefix or "", body.input_suffix or ""
    checks.text_fits(loaded.n_ctx_seq, len(prefix) + len(suffix) + len(body.prompt)
                     + sum(len(c.text) + len(c.filename) for c in body.input_extra), "input_prefix")
    fim = FimTokens(pre, suf, mid, rep=vocab.fim_rep if vocab.fim_rep >= 0 else None,
                    sep=vocab.fim_sep if vocab.fim_sep >= 0 else None)
    bos = next(iter(checks.fim_bos(vocab)), None)
    extra = [ExtraText(c.filename, c.text) for c in body.input_extra]
    return infill_tokens(vocab, fim, bos, prefix, suffix, extra, body.prompt, loaded.n_ctx_seq,
                         body.n_predict)


def _completion_prompt(loaded: ServedModel, body: llama.CompletionNativeRequest) -> list[int]:
    vocab = loaded.tokenizer
    assert vocab is not None
    if body.prompt is None:
        raise InvalidRequest("`prompt` is required", param="prompt")
    if isinstance(body.prompt, str):
        checks.text_fits(loaded.n_ctx_seq, len(body.prompt), "prompt")
        return vocab.tokenize(body.prompt, add_special=True)
    checks.token_ids(body.prompt, vocab, "prompt", indexed=True)
    return list(body.prompt)


def build_native_request(loaded: ServedModel, body: llama.InfillRequest | llama.CompletionNativeRequest,
                         client: str) -> GenerationRequest:
    hole: Hole | None = None
    vocab = loaded.tokenizer
    assert vocab is not None
    if isinstance(body, llama.InfillRequest):
        tokens, param = _infill_prompt(loaded, body), "input_prefix"
        hole = hole_around((body.input_prefix or "") + body.prompt, body.input_suffix or "")
    else:
        tokens, param = _completion_prompt(loaded, body), "prompt"
        if isinstance(body.prompt, str):
            hole = hole_in_prompt(vocab, vocab.fim_tokens, body.prompt)
    room = checks.room_after(loaded.n_ctx_seq, tokens, param)
    return GenerationRequest(
        request_id=uuid.uuid4().hex,
        prompt_tokens=tokens,
        max_tokens=room if body.n_predict < 0 else min(body.n_predict, room),
        sampling=_sampling(body),
        stop=checks.stop_strings(body.stop),
        ignore_eos=body.ignore_eos,
        session_key=named(client, body.prompt_cache_key) if body.prompt_cache_key else None,
        scope=client,
        # a request for no tokens warms the cache (llama.vim sends it with t_max_prompt_ms 1,
        # which llama.cpp ignores): its prompt is the whole point, so it gets the time it takes
        max_prompt_s=_seconds(body.t_max_prompt_ms) if body.n_predict != 0 else None,
        max_predict_s=_seconds(body.t_max_predict_ms),
        hole=hole,
        draft_max=body.speculative_n_max,
    )
