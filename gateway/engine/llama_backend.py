"""The only module that imports `llama_cpp`: a model, a multi-sequence context, a batch, samplers.

Thin typed wrappers over llama.cpp's C API through llama-cpp-python's ctypes module. No policy:
which sequence runs when is the engine's business. Not thread-safe: one thread owns a context.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import llama_cpp
import numpy as np
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

from gateway.engine.failpoints import trigger
from gateway.engine.types import SamplingParams

log = logging.getLogger(__name__)

_LOG_LEVEL_ERROR = 4

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])  # llama_token_data

# GBNF for any JSON object (llama.cpp's own); `json_schema_grammar` makes one for a JSON schema
JSON_OBJECT_GRAMMAR: str = JSON_GBNF


def json_schema_grammar(schema_json: str) -> str:
    """GBNF for exactly the JSON `schema_json` describes (llama.cpp's converter; raises)."""
    return str(json_schema_to_gbnf(schema_json))


# what llama.cpp logs as errors when a decode is aborted on purpose (see `LlamaContext.abort`)
_ABORT_NOISE = (b"failed with error 1", b"compute status: 1", b"failed to decode, ret = 2")


@llama_cpp.llama_log_callback
def _forward_llama_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    if level == _LOG_LEVEL_ERROR and text and not any(n in text for n in _ABORT_NOISE):
        log.error("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())


_backend_ready = False


def _init_backend() -> None:
    global _backend_ready  # llama.cpp's backend is process-wide; initialise it once
    if not _backend_ready:
        llama_cpp.llama_log_set(_forward_llama_log, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _backend_ready = True


class LlamaModel:
    """A loaded GGUF: vocabulary, metadata and the weights."""

    def __init__(
        self,
        path: Path,
        n_gpu_layers: int = 0,
        progress: Callable[[float], None] | None = None,
        tensor_split: list[float] | None = None,
        vocab_only: bool = False,
        extra_buffers: bool = True,
    ) -> None:
        """Load a GGUF. `vocab_only` loads the tokenizer and metadata, not the weights: what the
        gateway process needs to tokenize and render prompts while an engine process runs it.
        `extra_buffers` off keeps the weights out of llama.cpp's extra CPU buffer types (AMX,
        repacked layouts): slower on some CPUs, but it avoids their faults (AMX inside a VM)."""
        _init_backend()
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        params.vocab_only = vocab_only
        params.use_extra_bufts = extra_buffers
        self.extra_buffers = extra_buffers
        if tensor_split:
            self._split = (ctypes.c_float * len(tensor_split))(*tensor_split)
            params.tensor_split = self._split
        if progress is not None:

            def on_progress(fraction: float, _user: ctypes.c_void_p) -> bool:
                progress(fraction)
                return True

            self._progress_cb = llama_cpp.llama_progress_callback(on_progress)
            params.progress_callback = self._progress_cb
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        self.ptr = model
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self._piece_buf = ctypes.create_string_buffer(256)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self.eog_tokens = [t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(self.vocab, t)]
        self.eog_set = frozenset(self.eog_tokens)
        self.bos_token = llama_cpp.llama_vocab_bos(self.vocab)
        self.bos_text = self._special_text(self.bos_token)
        self.eos_text = self._special_text(llama_cpp.llama_vocab_eos(self.vocab))
        fim = (llama_cpp.llama_vocab_fim_pre(self.vocab), llama_cpp.llama_vocab_fim_suf(self.vocab),
               llama_cpp.llama_vocab_fim_mid(self.vocab))
        # (prefix, suffix, middle) markers for fill-in-the-middle, when the model has all three
        self.fim_tokens: tuple[int, int, int] | None = fim if min(fim) >= 0 else None
        # repo-level FIM: a repository name, then file names, precede the prompt (-1: none)
        self.fim_rep = int(llama_cpp.llama_vocab_fim_rep(self.vocab))
        self.fim_sep = int(llama_cpp.llama_vocab_fim_sep(self.vocab))
        template = llama_cpp.llama_model_chat_template(model, None)
        self.chat_template: str | None = template.decode("utf-8") if template else None
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(model)
        stat = path.stat()
        self.identity = hashlib.sha256(
            f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{self.describe()}".encode()
        ).hexdigest()[:16]

    def grammar_sampler(self, grammar: str) -> llama_cpp.llama_sampler_p | None:
        """llama.cpp's sampler for this GBNF over this vocabulary; None when it rejects the
        grammar. The caller frees it."""
        sampler = llama_cpp.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        return sampler or None

    def grammar_is_valid(self, grammar: str) -> bool:
        """Whether llama.cpp accepts this GBNF for this vocabulary: checked where a bad one can
        only cost a 400, never in the engine process."""
        sampler = self.grammar_sampler(grammar)
        if sampler is None:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True

    def describe(self) -> str:
        buf = ctypes.create_string_buffer(256)
        llama_cpp.llama_model_desc(self.ptr, buf, len(buf))
        return buf.value.decode("utf-8", "replace")

    def tokenize(self, text: str, add_special: bool, parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        tokens = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            self.vocab, data, len(data), tokens, capacity, add_special, parse_special
        )
        if count < 0:  # buffer too small: -count is the size needed
            capacity = -count
            tokens = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(
                self.vocab, data, len(data), tokens, capacity, add_special, parse_special
            )
        return list(tokens[:count])

    def token_bytes(self, token: int, special: bool = False) -> bytes:
        size = llama_cpp.llama_token_to_piece(
            self.vocab, token, self._piece_buf, len(self._piece_buf), 0, special
        )
        if size < 0:
            buf = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
            return buf.raw[:size]
        return self._piece_buf.raw[:size]

    def _special_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.token_bytes(token, special=True).decode("utf-8", "replace")

    def close(self) -> None:
        if self.ptr:
            llama_cpp.llama_model_free(self.ptr)
            self.ptr = None


class TokenBatch:
    """A reusable llama_batch: tokens of several sequences decoded in one call."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._batch = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.size = 0

    def clear(self) -> None:
        self.size = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append one token; return its index (where its logits will be)."""
        i = self.size
        b = self._batch
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = logits
        self.size = i + 1
        return i

    def free(self) -> None:
        llama_cpp.llama_batch_free(self._batch)


class DecodeAborted(Exception):
    """`abort()` stopped a decode midway; llama.cpp removed the batch's positions it had added."""


def _flag_reader() -> int:
    """Address of a C `bool f(void *flag)`, true when the byte at `flag` is set: libc's strlen
    (b"\x01\x00" -> 1, b"\x00" -> 0; a bool is the low byte of the same register). Being C,
    llama.cpp's compute thread polls it between graph nodes without Python's GIL."""
    return ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p).value or 0


class LlamaContext:
    """A llama.cpp context with `n_seq` independent sequences of `n_ctx_seq` tokens each."""

    def __init__(
        self, model: LlamaModel, n_ctx_seq: int, n_seq: int, n_batch: int, threads: int,
        decode_failpoint: str | None = None,
    ) -> None:
        self.model = model
        self._decode_failpoint = decode_failpoint
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_seq * n_seq
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.kv_unified = False
        params.swa_full = True  # keep all of a sliding-window model's KV, so prefixes can be reused
        threads = threads or (os.cpu_count() or 1)
        params.n_threads = threads
        params.n_threads_batch = threads
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(model.ptr, params)
        if not ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.ptr = ctx
        self.n_ctx_seq = llama_cpp.llama_n_ctx(ctx) // n_seq
        self.memory = llama_cpp.llama_get_memory(ctx)
        self.batch = TokenBatch(n_batch)
        self._eog = model.eog_tokens
        self._greedy = llama_cpp.llama_sampler_init_greedy()
        self._abort_flag = ctypes.create_string_buffer(2)
        self._abort_reader = llama_cpp.ggml_abort_callback(_flag_reader())
        llama_cpp.llama_set_abort_callback(
            ctx, self._abort_reader, ctypes.cast(self._abort_flag, ctypes.c_void_p)
        )

    def abort(self) -> None:
        """Ask the decode in flight (from any thread) to stop at its next graph node."""
        self._abort_flag[0] = b"\x01"

    def decode(self) -> None:
        b = self.batch
        b._batch.n_tokens = b.size
        if self._decode_failpoint is not None and trigger(self._decode_failpoint,
                                                          self.model.extra_buffers):
            raise RuntimeError("llama_decode failed (failpoint engine.decode=error)")
        rc = llama_cpp.llama_decode(self.ptr, b._batch)
        self._abort_flag[0] = b"\x00"
        if rc == 2:
            raise DecodeAborted()
        if rc != 0:
            raise RuntimeError(f"llama_decode failed ({rc})")

    def warm_up(self) -> None:
        """Run a prompt chunk and one generation step through the batch path requests use, then
        forget them: a backend that cannot decode on this machine fails here (raises, or dies by
        a signal), not on the first request. The chunk is as wide as a prefill step (up to 64
        tokens), because some CPU kernels (AMX among them) only run on batches that wide."""
        batch = self.batch
        text = "The quick brown fox jumps over the lazy dog. " * 16
        tokens = self.model.tokenize(text, add_special=True)[: max(1, min(64, batch.capacity - 1))]
        batch.clear()
        for pos, token in enumerate(tokens):
            index = batch.add(token, pos, 0, pos == len(tokens) - 1)
        self.decode()
        token = int(llama_cpp.llama_sampler_sample(self._greedy, self.ptr, index))
        batch.clear()
        batch.add(token, len(tokens), 0, True)
        self.decode()
        batch.clear()
        self.forget(0)

    def logits(self, index: int) -> np.ndarray:
        """The logits row `index` of the last decode (a view: valid until the next one)."""
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ptr, index),
                                     shape=(self.model.n_vocab,))

    def suppress_end(self, index: int) -> None:
        """Make end-of-generation tokens impossible for the logits row `index` (ignore_eos)."""
        self.logits(index)[self._eog] = -math.inf

    def forget(self, seq: int, start: int = 0) -> bool:
        """Drop a sequence's KV from position `start` on; False if llama.cpp cannot cut it there."""
        return bool(llama_cpp.llama_memory_seq_rm(self.memory, seq, start, -1))

    def copy_sequence(self, source: int, target: int) -> None:
        """Make `target` hold all of `source`'s KV (the caller cuts it to what it needs).
        Sequences live in separate streams here, which llama.cpp copies only whole."""
        llama_cpp.llama_memory_seq_rm(self.memory, target, -1, -1)
        llama_cpp.llama_memory_seq_cp(self.memory, source, target, -1, -1)

    def sequence_state_size(self, seq: int) -> int:
        return int(llama_cpp.llama_state_seq_get_size(self.ptr, seq))

    def save_sequence(self, seq: int) -> bytes:
        size = llama_cpp.llama_state_seq_get_size(self.ptr, seq)
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self.ptr, buf, size, seq)
        return bytes(memoryview(buf)[:written])

    def restore_sequence(self, seq: int, state: bytes) -> bool:
        buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        return llama_cpp.llama_state_seq_set_data(self.ptr, buf, len(state), seq) != 0

    def close(self) -> None:
        if self.ptr:
            self.batch.free()
            llama_cpp.llama_sampler_free(self._greedy)
            llama_cpp.llama_free(self.ptr)
            self.ptr = None


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
