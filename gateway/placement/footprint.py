"""Reads what placement needs from a GGUF's header (no weights loaded): sizes and shapes."""

from __future__ import annotations

from pathlib import Path

from gateway.placement.plan import Footprint

MIB = 1 << 20


def _field(reader, key: str):  # type: ignore[no-untyped-def]
    f = reader.fields.get(key)
    if f is None:
        return None
    value = f.contents()
    return value


def footprint(path: Path, n_ctx: int, parallel: int, n_batch: int, kv_bytes_per_value: int = 2
              ) -> Footprint:
    """Weights (the tensor data), KV cache for `n_ctx` x `parallel` at f16, and compute buffers
    (the output logits of one batch plus a margin, llama.cpp's own buffers are about that size)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    weights = sum(int(t.n_bytes) for t in reader.tensors)
    arch = _field(reader, "general.architecture")
    layers = int(_field(reader, f"{arch}.block_count") or 0)
    embd = int(_field(reader, f"{arch}.embedding_length") or 0)
    heads = int(_field(reader, f"{arch}.attention.head_count") or 1)
    heads_kv = int(_field(reader, f"{arch}.attention.head_count_kv") or heads)
    head_k = int(_field(reader, f"{arch}.attention.key_length") or embd // max(heads, 1))
    head_v = int(_field(reader, f"{arch}.attention.value_length") or embd // max(heads, 1))
    tokens = _field(reader, "tokenizer.ggml.tokens")
    vocab = len(tokens) if tokens is not None else 32000
    kv = layers * n_ctx * parallel * heads_kv * (head_k + head_v) * kv_bytes_per_value
    compute = vocab * 4 * max(parallel, 1) + n_batch * embd * 4 * 16 + 64 * MIB
    return Footprint(weights=weights, kv=kv, compute=compute)
