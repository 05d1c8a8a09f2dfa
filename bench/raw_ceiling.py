"""The raw llama.cpp ceiling: a bare batched `llama_decode` loop over B sequences, no HTTP, no engine.

Same model, threads and context layout as the gateway (one sequence per slot, greedy sampling), so
the ratio gateway/raw is what the serving stack costs.
"""

from __future__ import annotations

import time
from pathlib import Path

from gateway.engine.llama_backend import LlamaContext, LlamaModel, Sampler
from gateway.engine.requests import SamplingParams

PROMPT = "The history of the printing press begins"


def decode_rate(model_path: Path, batch: int, n_tokens: int, threads: int, n_ctx: int,
                extra_buffers: bool = True) -> float:
    """Aggregate tokens/s of `batch` sequences decoding `n_tokens` each, after their prefill."""
    model = LlamaModel(model_path, extra_buffers=extra_buffers)
    ctx = LlamaContext(model, n_ctx, batch, 512, threads)
    samplers = [Sampler(SamplingParams(temperature=0.0), model) for _ in range(batch)]
    prompt = model.tokenize(PROMPT, add_special=True)
    b = ctx.batch
    b.clear()
    rows = []
    for seq in range(batch):
        for pos, token in enumerate(prompt):
            index = b.add(token, pos, seq, pos == len(prompt) - 1)
        rows.append(index)
    ctx.decode()
    next_tokens = [samplers[s].sample(ctx, rows[s]) for s in range(batch)]
    pos = len(prompt)
    start = time.perf_counter()
    for _ in range(n_tokens):
        b.clear()
        rows = [b.add(next_tokens[s], pos, s, True) for s in range(batch)]
        ctx.decode()
        next_tokens = [samplers[s].sample(ctx, rows[s]) for s in range(batch)]
        pos += 1
    elapsed = time.perf_counter() - start
    for sampler in samplers:
        sampler.free()
    ctx.close()
    model.close()
    return batch * n_tokens / elapsed
