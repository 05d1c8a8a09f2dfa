"""Fits a model's `"auto"` context and slots to the memory its devices have left.

The room is what the GPUs it may use have free after the models already placed (and each
engine's GPU context), or, on a machine without GPUs, a quarter of the host's RAM; it is shared
out evenly among the models that fit themselves, and among a model's replicas. From it go the
weights and the compute buffers; the rest holds KV, in the cache's types. Slots come first:
with both "auto", as many slots as hold a conversation of `n_ctx_min` tokens each (up to
`parallel_max`), then each conversation as long as the rest allows (up to `n_ctx_max` and the
context the model was trained on, in steps of 256). Below the floors it does not fit: an error
that says what was there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec

from gateway.config import ModelConfig
from gateway.placement.cpus import host_ram_bytes
from gateway.placement.footprint import footprint
from gateway.placement.gguf_header import read_header
from gateway.placement.plan import PlacementError, gib

STEP = 256  # a fitted n_ctx is a multiple of this


@dataclass(frozen=True)
class Fitted:
    model: ModelConfig  # with its n_ctx and parallel decided
    note: str  # the choice, explained ("" when nothing was left to decide)


def host_room_bytes() -> int:
    """Where there are no GPUs: a quarter of the host's RAM for the models that fit themselves."""
    return host_ram_bytes() // 4


def trained_context(path: Path) -> int | None:
    values = read_header(path).values
    arch = values.get("general.architecture", "")
    value = values.get(f"{arch}.context_length")
    return int(value) if isinstance(value, (int, float)) else None  # type: ignore[arg-type]


def fit(model: ModelConfig, path: Path, room_bytes: int, where: str) -> Fitted:
    c = model.context
    if not c.fits:
        return Fitted(model, "")
    kinds = (c.cache_type_k, c.cache_type_v)
    per_token = footprint(path, 1, 1, c.n_batch, *kinds).kv
    widest = c.parallel_max if c.parallel == "auto" else c.parallel
    fixed = footprint(path, 1, widest, c.n_batch, *kinds)
    each = room_bytes // max(model.replicas, 1)
    kv_room = each - fixed.weights - fixed.compute
    ceiling = c.n_ctx_max
    trained = trained_context(path)
    if trained:
        ceiling = min(ceiling, trained)
    if c.parallel == "auto":
        floor_ctx = c.n_ctx_min if c.n_ctx == "auto" else c.n_ctx
        parallel = min(c.parallel_max, max(0, kv_room) // max(per_token * floor_ctx, 1))
    else:
        parallel = c.parallel
    if c.n_ctx == "auto":
        held = min(ceiling, max(0, kv_room) // max(per_token * max(parallel, 1), 1))
        # in steps of 256, unless that would take it below its floor
        n_ctx = held // STEP * STEP if held // STEP * STEP >= min(c.n_ctx_min, ceiling) else held
    else:
        n_ctx = c.n_ctx
    if parallel < c.parallel_min or n_ctx < min(c.n_ctx_min, ceiling):
        raise PlacementError(
            f"{model.id} does not fit itself: {gib(each)} in {where} less the weights "
            f"{gib(fixed.weights)} and compute {gib(fixed.compute)} holds "
            f"{max(0, kv_room) // max(per_token, 1)} tokens of KV ({per_token} bytes each, "
            f"{'/'.join(kinds)}); the floors ask {c.parallel_min} slot(s) of "
            f"{min(c.n_ctx_min, ceiling)} tokens")
    context = msgspec.structs.replace(c, n_ctx=int(n_ctx), parallel=int(parallel))
    kv = per_token * n_ctx * parallel
    capped = ""
    if n_ctx == ceiling:
        capped = (" (the context it was trained on)" if trained and trained <= c.n_ctx_max
                  else " (n_ctx_max)")
    note = (f"fitted: {parallel} slots x {n_ctx} tokens{capped}: {gib(kv)} of KV "
            f"({'/'.join(kinds)}) beside its weights ({gib(fixed.weights)}) and compute "
            f"({gib(fixed.compute)}) in its share of {where}, {gib(each)}")
    return Fitted(msgspec.structs.replace(model, context=context), note)
