"""Placement: which GPUs each model replica runs on, planned from memory needs before anything loads.

Pure: footprints and GPU inventories in, a plan (or a `PlacementError` that says what does not fit
where, by how much) out. Each replica goes whole onto the single GPU where it fits most snugly;
one too large for any card is split across the cards with the most free memory, its tensor split in
proportion to what each gives. GPUs reserved for other work are never used. With no GPUs, all runs
on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GIB = 1 << 30


def gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    vendor: str = "nvidia"  # "amd": engines are pointed at their cards the HIP way


@dataclass(frozen=True)
class Footprint:
    """Memory one replica needs: weights, KV cache (n_ctx x parallel), compute buffers."""

    weights: int
    kv: int
    compute: int

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.compute


@dataclass(frozen=True)
class ModelDemand:
    model_id: str
    footprint: Footprint
    replicas: int = 1
    gpus: list[int] | None = None  # None: "auto"
    tensor_split: list[float] = field(default_factory=list)
    n_gpu_layers: int = -1  # -1: all layers when on GPUs


@dataclass(frozen=True)
class ReplicaPlacement:
    gpus: list[int]
    tensor_split: list[float]
    need_bytes: int
    n_gpu_layers: int
    context_bytes: int = 0  # its process's GPU context, on each of its GPUs

    def env(self, vendor: str = "nvidia") -> dict[str, str]:
        """The engine's view of its GPUs: CUDA's variable; on AMD cards HIP's (ROCm would apply
        CUDA's as well, one after the other, so it is not set) and ggml's Vulkan one (a Vulkan
        build reads only that)."""
        if not self.gpus:
            return {}
        cards = ",".join(str(g) for g in self.gpus)
        if vendor == "amd":
            return {"HIP_VISIBLE_DEVICES": cards, "GGML_VK_VISIBLE_DEVICES": cards}
        return {"CUDA_VISIBLE_DEVICES": cards}

    def bytes_per_gpu(self) -> dict[int, int]:
        """What this replica takes from each of its GPUs: its need split by its tensor split
        (a user's split need not sum to 1)."""
        shares = self.tensor_split or [1.0] * len(self.gpus)
        total = sum(shares) or 1.0
        return {g: int(self.need_bytes * share / total) + 1 + self.context_bytes
                for g, share in zip(self.gpus, shares)}

    def describe(self) -> dict[str, object]:
        return {"device": "cpu" if not self.gpus else "gpu", "gpus": self.gpus,
                "tensor_split": self.tensor_split, "memory_bytes": self.need_bytes}


@dataclass(frozen=True)
class Placement:
    model_id: str
    replicas: list[ReplicaPlacement]


class PlacementError(Exception):
    """The models cannot fit; the message says which, where, and by how much."""


class DoesNotFitAlone(PlacementError):
    """A model does not fit even with nothing else on the GPUs: no model's sleep makes room."""


def cpu_placement(model_id: str, replicas: int, need: int = 0) -> Placement:
    return Placement(model_id, [ReplicaPlacement([], [], need, 0) for _ in range(replicas)])


def plan(demands: list[ModelDemand], gpus: list[Gpu], reserved: frozenset[int] = frozenset(),
         context_bytes: int = 0) -> dict[str, Placement]:
    """`context_bytes`: what each engine process's GPU context costs on each GPU it uses (CUDA
    takes a few hundred MB per process before any model), kept free besides the model."""
    usable = [g for g in gpus if g.index not in reserved]
    if not gpus:
        return {d.model_id: cpu_placement(d.model_id, d.replicas, d.footprint.total) for d in demands}
    if not usable:
        raise PlacementError("every GPU is reserved for other work; nothing can be placed")
    free = {g.index: g.free_bytes for g in usable}
    names = {g.index: g.name for g in usable}
    out: dict[str, list[ReplicaPlacement]] = {d.model_id: [] for d in demands}
    problems: list[str] = []
    # biggest first: they have the fewest places to go
    jobs = sorted(((d, r) for d in demands for r in range(d.replicas)),
                  key=lambda job: job[0].footprint.total, reverse=True)
    for demand, _replica in jobs:
        need = demand.footprint.total
        allowed = [i for i in free if demand.gpus is None or i in demand.gpus]
        if demand.gpus is not None:
            missing = [i for i in demand.gpus if i not in free]
            if missing:
                problems.append(f"{demand.model_id}: GPU(s) {missing} are not available "
                                f"(reserved or absent)")
                continue
        placed = _place_one(demand, need, allowed, free, context_bytes)
        if placed is None:
            spare = [free[i] - context_bytes for i in allowed if free[i] > context_bytes]
            room = sum(spare)
            short = (need - room if spare
                     else need + context_bytes - max((free[i] for i in allowed), default=0))
            where = ", ".join(f"GPU {i} ({names[i]}) {gib(free[i])} free" for i in allowed)
            problems.append(f"{demand.model_id}: needs {gib(need)} (weights {gib(demand.footprint.weights)}"
                            f" + KV {gib(demand.footprint.kv)} + compute {gib(demand.footprint.compute)}"
                            f"{f' + GPU context {gib(context_bytes)}' if context_bytes else ''});"
                            f" {where}: short by "
                            f"{gib(short) if need > room else 'fragmentation'}")
            continue
        out[demand.model_id].append(placed)
    if problems:
        raise PlacementError("the models do not fit:\n  " + "\n  ".join(problems))
    return {model_id: Placement(model_id, replicas) for model_id, replicas in out.items()}


def _place_one(demand: ModelDemand, need: int, allowed: list[int], free: dict[int, int],
               context: int = 0) -> ReplicaPlacement | None:
    layers = demand.n_gpu_layers
    if demand.tensor_split and demand.gpus:
        # the user's own split over the user's GPUs: each card must hold its share
        total = sum(demand.tensor_split)
        shares = {g: int(need * w / total) + 1 + context
                  for g, w in zip(demand.gpus, demand.tensor_split)}
        if any(free[g] < share for g, share in shares.items()):
            return None
        for g, share in shares.items():
            free[g] -= share
        return ReplicaPlacement(list(demand.gpus), list(demand.tensor_split), need, layers, context)
    fitting = [i for i in allowed if free[i] >= need + context]
    if fitting:
        best = min(fitting, key=lambda i: free[i] - need)  # the snuggest fit keeps big cards free
        free[best] -= need + context
        return ReplicaPlacement([best], [], need, layers, context)
    chosen: list[int] = []
    room = 0
    for i in sorted(allowed, key=lambda i: free[i], reverse=True):
        if room >= need:
            break
        if free[i] > context:
            chosen.append(i)
            room += free[i] - context
    if room < need:
        return None
    chosen.sort()
    split = [(free[i] - context) / room for i in chosen]
    for i, fraction in zip(chosen, split):
        free[i] -= int(need * fraction) + 1 + context
    return ReplicaPlacement(chosen, [round(s, 4) for s in split], need, layers, context)


def parse_inventory(text: str) -> list[Gpu]:
    """`5x12GiB` or `24GiB,12GiB,8GiB` (GB and GiB both read as GiB) into a GPU list."""
    gpus: list[Gpu] = []
    for raw in text.split(","):
        part = raw.strip()
        count, _, size = part.partition("x") if "x" in part else ("1", "", part)
        number = size.lower().removesuffix("gib").removesuffix("gb").removesuffix("g")
        try:
            n, size_gib = int(count), float(number)
        except ValueError:
            raise ValueError(f"cannot read GPU inventory {part!r}: use e.g. 5x12GiB or 24GiB,8GiB") from None
        for _ in range(n):
            total = int(size_gib * GIB)
            gpus.append(Gpu(len(gpus), f"{size_gib:g} GiB GPU", total, total))
    return gpus


def remaining(gpus: list[Gpu], placements: list[Placement]) -> list[Gpu]:
    """The GPUs with what `placements` take from them subtracted: to place a model that arrives late
    (a download that finished after the start) without disturbing the others."""
    taken: dict[int, int] = {}
    for placement in placements:
        for r in placement.replicas:
            for g, share in r.bytes_per_gpu().items():
                taken[g] = taken.get(g, 0) + share
    return [Gpu(g.index, g.name, g.total_bytes, g.free_bytes - taken.get(g.index, 0), g.vendor)
            for g in gpus]
