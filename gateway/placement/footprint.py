"""Reads what placement needs from a GGUF's header (no weights loaded): sizes and shapes."""

from __future__ import annotations

from pathlib import Path

from gateway.engine.settings import KV_BYTES_PER_VALUE
from gateway.placement.gguf_header import read_header
from gateway.placement.plan import Footprint

MIB = 1 << 20


def footprint(path: Path, n_ctx: int, parallel: int, n_batch: int, type_k: str = "f16",
              type_v: str = "f16") -> Footprint:
    """Weights (the tensor data), KV cache for `n_ctx` x `parallel` in its cache types, and
    compute buffers (the output logits of one batch plus a margin, llama.cpp's own buffers are
    about that size)."""
    header = read_header(path)
    values = header.values

    def number(key: str, default: int) -> int:
        value = values.get(key)
        return int(value) if isinstance(value, (int, float)) else default  # type: ignore[arg-type]

    arch = values.get("general.architecture", "")
    layers = number(f"{arch}.block_count", 0)
    embd = number(f"{arch}.embedding_length", 0)
    heads = number(f"{arch}.attention.head_count", 1)
    heads_kv = number(f"{arch}.attention.head_count_kv", heads)
    head_k = number(f"{arch}.attention.key_length", embd // max(heads, 1))
    head_v = number(f"{arch}.attention.value_length", embd // max(heads, 1))
    vocab = header.array_lengths.get("tokenizer.ggml.tokens", 32000)
    per_token = kv_bytes_per_token(layers, heads_kv, head_k, head_v, type_k, type_v)
    kv = int(per_token * n_ctx * parallel)
    compute = vocab * 4 * max(parallel, 1) + n_batch * embd * 4 * 16 + 64 * MIB
    return Footprint(weights=header.tensor_bytes, kv=kv, compute=compute)


def kv_bytes_per_token(layers: int, heads_kv: int, head_k: int, head_v: int, type_k: str = "f16",
                       type_v: str = "f16") -> float:
    """KV bytes one token of a conversation holds: K and V of every layer, in their types."""
    return layers * heads_kv * (head_k * KV_BYTES_PER_VALUE[type_k]
                                + head_v * KV_BYTES_PER_VALUE[type_v])
