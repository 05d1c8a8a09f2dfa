"""A llama.cpp context of several sequences (`LlamaContext`), the batch it decodes (`TokenBatch`),
and how a decode in flight is aborted."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass, replace
import math
import os
import time

import llama_cpp
import numpy as np

from gateway.engine.llama_backend.model import LlamaModel

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
        if i >= self.capacity:  # past the C arrays: never written
            raise IndexError(f"the batch holds {self.capacity} tokens")
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


GGML_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0,
              "q4_0": llama_cpp.GGML_TYPE_Q4_0}
WARM_UP_TEXT = "The quick brown fox jumps over the lazy dog. " * 16  # a first decode, timed steps
CTX_PAD = 256  # llama.cpp rounds each sequence's context up to a multiple of this
VALUE_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}  # ggml's blocks of 32 values
FLASH_ATTN = {"auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
              "on": llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
              "off": llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED}


@dataclass(frozen=True)
class KvLayout:
    """How a context holds its KV: the cache's types, flash attention, one pool or a stream per
    sequence."""

    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: str = "auto"
    unified: bool = False

    def bytes_per_value(self) -> float:
        """Bytes the cache takes per K value and V value together (K and V as wide)."""
        return VALUE_BYTES[self.type_k] + VALUE_BYTES[self.type_v]

    def describe(self) -> str:
        pool = "one pool" if self.unified else "a stream per slot"
        return f"K {self.type_k}, V {self.type_v}, flash attention {self.flash_attn}, {pool}"


class LlamaContext:
    """A llama.cpp context with `n_seq` independent sequences of `n_ctx_seq` tokens each."""

    def __init__(
        self, model: LlamaModel, n_ctx_seq: int, n_seq: int, n_batch: int, threads: int,
        before_decode: Callable[[], bool] | None = None, kv: KvLayout = KvLayout(),
    ) -> None:
        self.model = model
        self._before_decode = before_decode  # a test's fault: True fails the decode
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_seq * n_seq
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        params.swa_full = True  # keep all of a sliding-window model's KV, so prefixes can be reused
        threads = threads or (os.cpu_count() or 1)
        params.n_threads = threads
        params.n_threads_batch = threads
        params.no_perf = True
        self.kv, self.kv_note = kv, kv.describe()
        ctx = self._create(params, kv)
        if not ctx and kv.type_v != "f16" and kv.flash_attn == "auto":
            # no flash attention on this backend, so no quantized V: V at f16, in the memory
            # the placement gave the quantized cache (a shorter context), and say so
            self.kv = replace(kv, type_v="f16")
            asked = params.n_ctx
            fitting = int(asked * kv.bytes_per_value() / self.kv.bytes_per_value())
            params.n_ctx = n_seq * max(CTX_PAD, fitting // n_seq // CTX_PAD * CTX_PAD)
            ctx = self._create(params, self.kv)
            self.kv_note = (f"{self.kv.describe()} (V {kv.type_v} needs flash attention, which "
                            "this backend does not have for this model; the context is "
                            f"{params.n_ctx} tokens instead of {asked}, in the same memory)")
        if not ctx:
            why = ("; a quantized KV cache needs the model's attention head size to be a multiple "
                   "of 32, and a quantized V needs flash attention" if "f16" not in
                   (kv.type_k, kv.type_v) or kv.type_k != kv.type_v else "")
            raise RuntimeError(f"llama.cpp could not create a context ({kv.describe()}){why}")
        self.ptr: llama_cpp.llama_context_p | None = ctx
        # with one pool a sequence may take all of it (the engine keeps the sum within it)
        self.pool_cells = llama_cpp.llama_n_ctx(ctx) if self.kv.unified else None
        self.n_ctx_seq = llama_cpp.llama_n_ctx(ctx) // n_seq
        if self.pool_cells is not None:  # the pool, within the context it was trained on
            self.n_ctx_seq = max(self.n_ctx_seq, min(self.pool_cells, model.n_ctx_train
                                                     or self.pool_cells))
        self.memory = llama_cpp.llama_get_memory(ctx)
        self.batch = TokenBatch(n_batch)
        self._eog = model.eog_tokens
        self._greedy = llama_cpp.llama_sampler_init_greedy()
        self._abort_flag = ctypes.create_string_buffer(2)
        self._abort_reader = llama_cpp.ggml_abort_callback(_flag_reader())
        llama_cpp.llama_set_abort_callback(
            ctx, self._abort_reader, ctypes.cast(self._abort_flag, ctypes.c_void_p)
        )

    def _create(self, params: llama_cpp.llama_context_params, kv: KvLayout
                ) -> llama_cpp.llama_context_p | None:
        params.type_k = GGML_TYPES[kv.type_k]
        params.type_v = GGML_TYPES[kv.type_v]
        params.flash_attn_type = FLASH_ATTN[kv.flash_attn]
        params.kv_unified = kv.unified
        return llama_cpp.llama_init_from_model(self.model.ptr, params) or None

    def abort(self) -> None:
        """Ask the decode in flight (from any thread) to stop at its next graph node."""
        self._abort_flag[0] = b"\x01"

    def decode(self) -> None:
        b = self.batch
        b._batch.n_tokens = b.size
        if self._before_decode is not None and self._before_decode():
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
        tokens = self.model.tokenize(WARM_UP_TEXT, add_special=True)
        tokens = tokens[: max(1, min(64, batch.capacity - 1))]
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

    def time_steps(self, sizes: tuple[int, ...], rounds: int = 3) -> dict[int, float]:
        """Seconds a decode of each of these many tokens (every one with its logits row) takes
        from the start of a sequence, the fastest of `rounds` (a busy moment is not the
        machine); the KV is forgotten after."""
        batch = self.batch
        times: dict[int, float] = {}
        tokens = self.model.tokenize(WARM_UP_TEXT, True)
        for _ in range(rounds):
            for n in (s for s in sizes if s < min(batch.capacity, len(tokens))):
                batch.clear()
                for pos in range(n):
                    batch.add(tokens[pos], pos, 0, True)
                started = time.perf_counter()
                self.decode()
                times[n] = min(times.get(n, math.inf), time.perf_counter() - started)
                self.forget(0)
        batch.clear()
        return times

    def greedy(self, index: int) -> int:
        """The likeliest token of the logits row `index` of the last decode."""
        return int(llama_cpp.llama_sampler_sample(self._greedy, self.ptr, index))

    def logits(self, index: int) -> np.ndarray:
        """The logits row `index` of the last decode (a view: valid until the next one)."""
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ptr, index),
                                     shape=(self.model.n_vocab,))

    def suppress_end(self, index: int) -> None:
        """Make end-of-generation tokens impossible for the logits row `index` (ignore_eos).
        Written through the row's pointer: a numpy view costs more than the few writes."""
        row = llama_cpp.llama_get_logits_ith(self.ptr, index)
        for token in self._eog:
            row[token] = -math.inf

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


