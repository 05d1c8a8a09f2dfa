"""One sequence's sampler chain, with an optional grammar (`Sampler`)."""

from __future__ import annotations

import ctypes
import math
from typing import Protocol

import llama_cpp
import numpy as np

from gateway.engine.llama_backend.context import LlamaContext
from gateway.engine.llama_backend.model import LlamaModel

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])  # llama_token_data



class SamplingParams(Protocol):
    """What the sampler chain is built from (the engine's `SamplingParams`)."""

    @property
    def temperature(self) -> float: ...
    @property
    def top_p(self) -> float: ...
    @property
    def top_k(self) -> int: ...
    @property
    def min_p(self) -> float: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def presence_penalty(self) -> float: ...
    @property
    def frequency_penalty(self) -> float: ...
    @property
    def repeat_penalty(self) -> float: ...
    @property
    def penalty_last_n(self) -> int: ...
    @property
    def logit_bias(self) -> list[tuple[int, float]]: ...

class GrammarStuck(Exception):
    """The grammar allows none of the vocabulary's tokens next (llama.cpp would abort on one)."""


class Sampler:
    """One sequence's sampler chain (penalties, top-k/p, min-p, temperature, seeded draw), and
    optionally a grammar the output must follow.

    Without a grammar a token is drawn by llama.cpp in one call. With one, checking the grammar
    against all of a large vocabulary costs several times a decode step (and the step is shared by
    every sequence in the batch), so the draw goes as llama-server's does: draw freely, ask the
    grammar about that one token, and only when it refuses draw again from the constrained set.
    """

    def __init__(self, params: SamplingParams, model: LlamaModel, grammar: str | None = None) -> None:
        chain_params = llama_cpp.llama_sampler_chain_default_params()
        chain_params.no_perf = True
        self.ptr = llama_cpp.llama_sampler_chain_init(chain_params)
        self.grammar = None
        if grammar is not None:
            self.grammar = model.grammar_sampler(grammar)
            if self.grammar is None:
                self.free()
                raise ValueError("llama.cpp rejected the grammar")
            self._ids = np.arange(model.n_vocab, dtype=np.int32)
            self._candidates = np.zeros(model.n_vocab, dtype=_TOKEN_DATA)
            self._one = (llama_cpp.llama_token_data * 1)()
        add = lambda s: llama_cpp.llama_sampler_chain_add(self.ptr, s)  # noqa: E731
        if params.presence_penalty or params.frequency_penalty or params.repeat_penalty != 1.0:
            add(
                llama_cpp.llama_sampler_init_penalties(
                    model.n_vocab,
                    params.penalty_last_n,
                    params.repeat_penalty,
                    params.frequency_penalty,
                    params.presence_penalty,
                )
            )
        if params.logit_bias:
            biases = (llama_cpp.llama_logit_bias * len(params.logit_bias))(*(  # -100: never
                llama_cpp.llama_logit_bias(token, -math.inf if bias <= -100 else bias)
                for token, bias in params.logit_bias))
            add(llama_cpp.llama_sampler_init_logit_bias(model.n_vocab, len(biases), biases))
        if params.temperature <= 0.0:
            add(llama_cpp.llama_sampler_init_greedy())
            return
        if params.top_k > 0:
            add(llama_cpp.llama_sampler_init_top_k(params.top_k))
        if params.top_p < 1.0:
            add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        if params.min_p > 0.0:
            add(llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
        add(llama_cpp.llama_sampler_init_temp(params.temperature))
        seed = params.seed if params.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
        add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def sample(self, ctx: LlamaContext, index: int) -> int:
        if self.grammar is None:
            return int(llama_cpp.llama_sampler_sample(self.ptr, ctx.ptr, index))
        logits = ctx.logits(index)
        token = self._draw(logits, constrained=False)
        if not self._grammar_allows(token):
            token = self._draw(logits, constrained=True)
        llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.ptr, token)
        return token

    def accept(self, token: int) -> None:
        """A token written in place of a draw: the chain (and grammar) count it as drawn."""
        if self.grammar is not None:
            llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.ptr, token)

    def _draw(self, logits: np.ndarray, constrained: bool) -> int:
        candidates = self._candidates
        candidates["id"] = self._ids  # samplers sort and cut the array in place: refill it all
        candidates["logit"] = logits
        candidates["p"] = 0.0
        array = llama_cpp.llama_token_data_array(
            candidates.ctypes.data_as(llama_cpp.llama_token_data_p), len(candidates), -1, False)
        if constrained:
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(array))
        llama_cpp.llama_sampler_apply(self.ptr, ctypes.byref(array))
        chosen = array.data[array.selected] if 0 <= array.selected < array.size else None
        if chosen is None or not math.isfinite(chosen.logit):
            raise GrammarStuck
        return int(chosen.id)

    def _grammar_allows(self, token: int) -> bool:
        self._one[0] = llama_cpp.llama_token_data(token, 0.0, 0.0)
        array = llama_cpp.llama_token_data_array(self._one, 1, -1, False)
        llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(array))
        return math.isfinite(self._one[0].logit)

    def free(self) -> None:
        if self.ptr:
            llama_cpp.llama_sampler_free(self.ptr)
            self.ptr = None
        if self.grammar:
            llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None
