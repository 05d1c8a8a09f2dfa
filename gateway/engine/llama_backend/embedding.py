"""A second llama.cpp context on a model's weights, in embeddings mode: one pooled, normalized
vector per input (`EmbeddingContext`). Pooling is the GGUF's; a model that declares none (a chat
model) is mean-pooled."""

from __future__ import annotations

import llama_cpp
import numpy as np

from gateway.engine.llama_backend.context import TokenBatch
from gateway.engine.llama_backend.model import LlamaModel


class EmbeddingContext:
    def __init__(self, model: LlamaModel, n_ctx: int, n_seq: int, threads: int) -> None:
        self.model = model
        self.n_ctx = n_ctx
        self.n_seq = n_seq
        self.ptr = self._create(threads, llama_cpp.LLAMA_POOLING_TYPE_UNSPECIFIED)
        if llama_cpp.llama_pooling_type(self.ptr) == llama_cpp.LLAMA_POOLING_TYPE_NONE:
            llama_cpp.llama_free(self.ptr)
            self.ptr = self._create(threads, llama_cpp.LLAMA_POOLING_TYPE_MEAN)
        self.pooling = int(llama_cpp.llama_pooling_type(self.ptr))
        self.n_embd = int(llama_cpp.llama_model_n_embd(model.ptr))
        self.batch = TokenBatch(n_ctx)

    def _create(self, threads: int, pooling: int) -> llama_cpp.llama_context_p:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = params.n_batch = params.n_ubatch = self.n_ctx  # an input in one pass
        params.n_seq_max = self.n_seq
        params.kv_unified = True
        params.embeddings = True
        params.pooling_type = pooling
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(self.model.ptr, params)
        if not ctx:
            raise RuntimeError("llama.cpp could not create an embeddings context")
        return ctx

    def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        """One unit-length vector per input, in order; inputs share passes of up to `n_seq`
        inputs and `n_ctx` tokens. Each input must fit `n_ctx` (the caller checks)."""
        vectors: list[list[float]] = []
        memory = llama_cpp.llama_get_memory(self.ptr)
        i = 0
        while i < len(inputs):
            batch = self.batch
            batch.clear()
            seqs = 0
            while (i < len(inputs) and seqs < self.n_seq
                   and batch.size + len(inputs[i]) <= self.n_ctx):
                for pos, token in enumerate(inputs[i]):
                    batch.add(token, pos, seqs, True)
                seqs, i = seqs + 1, i + 1
            if seqs == 0:
                raise ValueError(f"an input of {len(inputs[i])} tokens exceeds {self.n_ctx}")
            batch._batch.n_tokens = batch.size
            rc = llama_cpp.llama_decode(self.ptr, batch._batch)
            if rc != 0:
                llama_cpp.llama_memory_clear(memory, True)
                raise RuntimeError(f"llama_decode failed ({rc}) computing embeddings")
            for seq in range(seqs):
                row = np.ctypeslib.as_array(llama_cpp.llama_get_embeddings_seq(self.ptr, seq),
                                            shape=(self.n_embd,)).astype(np.float64)
                norm = float(np.linalg.norm(row))
                vectors.append((row / norm if norm > 0 else row).tolist())
            llama_cpp.llama_memory_clear(memory, True)
        return vectors

    def close(self) -> None:
        self.batch.free()
        llama_cpp.llama_free(self.ptr)
