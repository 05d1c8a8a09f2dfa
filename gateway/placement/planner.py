"""From a config to placements: discover or take the GPUs, read each model's footprint from its
GGUF header, plan. Used by `gateway serve` (before any engine starts) and `gateway plan`."""

from __future__ import annotations

from pathlib import Path

from gateway.config import Config, ModelConfig
from gateway.placement.gpus import discover
from gateway.placement.fit import Fitted, fit, host_room_bytes
from gateway.placement.footprint import footprint
from gateway.model_source import ModelSourceError, resolve_model_path
from gateway.placement.plan import (
    Footprint,
    Gpu,
    ModelDemand,
    Placement,
    PlacementError,
    cpu_placement,
    gib,
    plan,
    remaining,
)


def demand_for(model: ModelConfig, path: Path) -> ModelDemand:
    c = model.context
    needs = footprint(path, c.size, c.slots, c.n_batch, c.cache_type_k, c.cache_type_v)
    spec = model.speculation
    if spec.kind == "draft" and spec.draft:  # loaded beside it, on its GPUs, its KV at f16
        draft = footprint(Path(spec.draft).expanduser(), c.size, c.slots, c.n_batch)
        needs = Footprint(needs.weights + draft.weights, needs.kv + draft.kv,
                          needs.compute + draft.compute)
    return ModelDemand(
        model_id=model.id,
        footprint=needs,
        replicas=model.replicas,
        gpus=None if model.gpus == "auto" else list(model.gpus),
        tensor_split=list(model.tensor_split),
        n_gpu_layers=model.n_gpu_layers,
    )


class Planner:
    """Places the models that are awake on the GPUs: at the start those loaded at start whose
    file is there, the others (a download still to come, a model woken by a request) later,
    against what is left, so a slow download never holds up the other models. A model put to
    sleep gives its room back (`release`)."""

    def __init__(self, config: Config, gpus: list[Gpu], source: str) -> None:
        self.config = config
        self.gpus = gpus
        self.source = source
        self.placements: dict[str, Placement] = {}
        self.unknown: dict[str, str] = {}  # models whose file could not be read now, and why
        self.sleeping: dict[str, str] = {}  # models placed only when a request wakes them: how
        self.fitted: dict[str, Fitted] = {}  # models whose "auto" sizes were decided: how

    @property
    def vendor(self) -> str:
        return self.gpus[0].vendor if self.gpus else ""

    @property
    def context_bytes(self) -> int:
        return int(self.config.server.gpu_context_mb * (1 << 20))

    def plan_available(self, download: bool = False, awake_only: bool = True
                       ) -> dict[str, Placement]:
        """Place every model loaded at start (every model, unless `awake_only`) whose file can
        be read now. The others (a download still to come, NFS not mounted, a broken file) are
        listed in `unknown` and placed if and when it arrives, so one of them never holds up the
        rest; models that sleep until a request are placed when it comes."""
        models = [m for m in self.config.models if m.load_at_start or not awake_only]
        if not self.gpus:
            self.placements = {m.id: cpu_placement(m.id, m.replicas) for m in models}
            for model in (m for m in models if m.context.fits):  # decided now where it can be
                try:
                    self.fitted_model(model, resolve_model_path(
                        model, self.config.server.cache_dir, local_only=True))
                except (ModelSourceError, OSError, ValueError, PlacementError):
                    pass  # when it loads, then (a failure says why there)
            return self.placements
        readable: list[tuple[ModelConfig, Path]] = []
        self.unknown = {}
        for model in models:
            try:
                readable.append((model, resolve_model_path(
                    model, self.config.server.cache_dir,
                    local_only=not download and model.source.hf is not None)))
            except (ModelSourceError, OSError, ValueError) as exc:
                self.unknown[model.id] = str(exc) or type(exc).__name__
        reserved = frozenset(self.config.server.reserved_gpus)
        demands = [demand_for(m, p) for m, p in readable if not m.context.fits]
        self.placements = plan(demands, self.gpus, reserved, self.context_bytes)
        for model, path in readable:  # those that fit themselves, each in what the others left
            if model.context.fits:
                demand = demand_for(self.fitted_model(model, path), path)
                left = remaining(self.gpus, list(self.placements.values()))
                self.placements.update(plan([demand], left, reserved, self.context_bytes))
        return self.placements

    def fitted_model(self, model: ModelConfig, path: Path) -> ModelConfig:
        """`model` with its "auto" context and slots decided (once; again after it sleeps), in
        an even share of what the models placed leave on its GPUs (without GPUs: of a quarter
        of the host's RAM) among the models that fit themselves and are not placed yet."""
        if not model.context.fits:
            return model
        if model.id not in self.fitted:
            placed = [p for m, p in list(self.placements.items()) if m != model.id]
            done = set(self.fitted) | (set(self.placements) if self.gpus else set())
            waiting = [m for m in self.config.models if m.context.fits and m.load_at_start
                       and m.id not in done and m.id != model.id]
            self.fitted[model.id] = self._fit_in(model, path, remaining(self.gpus, placed),
                                                 1 + len(waiting))
        return self.fitted[model.id].model

    def _fit_in(self, model: ModelConfig, path: Path, gpus: list[Gpu], sharing: int = 1
                ) -> Fitted:
        """`model` fitted to its share (of `sharing`) of what `gpus` have free, or of a quarter of
        the host's RAM without GPUs."""
        if not self.gpus:
            return fit(model, path, host_room_bytes() // sharing, "host RAM (a quarter of it)")
        allowed = [g for g in gpus if g.index not in self.config.server.reserved_gpus
                   and (model.gpus == "auto" or g.index in model.gpus)]
        # each replica's process has its own GPU context on each GPU
        room = sum(max(0, g.free_bytes - self.context_bytes * model.replicas) for g in allowed)
        return fit(model, path, room // sharing,
                   "free on GPU " + ",".join(str(g.index) for g in allowed))

    def placement_for(self, model: ModelConfig, path: Path) -> Placement:
        """Where `model` runs: as planned at the start, or, for a model whose file arrived after
        it, placed now in what the others left free."""
        if model.id in self.placements:
            return self.placements[model.id]
        model = self.fitted_model(model, path)
        if not self.gpus:
            self.placements[model.id] = cpu_placement(model.id, model.replicas)
            return self.placements[model.id]
        left = remaining(self.gpus, list(self.placements.values()))
        placed = plan([demand_for(model, path)], left, frozenset(self.config.server.reserved_gpus),
                      self.context_bytes)
        self.placements.update(placed)
        return placed[model.id]

    def note_sleepers(self) -> None:
        """For `gateway plan`: how each model not loaded at start would fit when woken."""
        reserved = frozenset(self.config.server.reserved_gpus)
        for model in self.config.models:
            if model.load_at_start or model.id in self.placements:
                continue
            if not self.gpus:
                self.sleeping[model.id] = "asleep until a request (CPU)"
                continue
            try:
                path = resolve_model_path(model, self.config.server.cache_dir, local_only=True)
                demand = demand_for(self.fitted_model(model, path), path)
            except (ModelSourceError, OSError, ValueError, PlacementError) as exc:
                self.unknown[model.id] = str(exc) or type(exc).__name__
                continue
            left = remaining(self.gpus, list(self.placements.values()))
            for gpus, note in ((left, "fits beside the others"),
                               (self.gpus, "fits once idle models sleep for it")):
                try:
                    plan([demand], gpus, reserved, self.context_bytes)
                    self.sleeping[model.id] = f"asleep until a request; {note}"
                    break
                except PlacementError as exc:
                    self.sleeping[model.id] = f"does not fit even alone: {exc}"

    def alone_problem(self, model: ModelConfig, path: Path) -> str | None:
        """Why `model` does not fit the GPUs even with nothing else on them (too big, pinned to
        a reserved or absent GPU): then putting other models to sleep cannot make room for it.
        None when it fits alone."""
        try:
            if model.context.fits:  # fitted to the GPUs as if nothing else were on them
                model = self._fit_in(model, path, self.gpus).model
            plan([demand_for(model, path)], self.gpus,
                 frozenset(self.config.server.reserved_gpus), self.context_bytes)
        except PlacementError as exc:
            return f"{exc} (with no other model on the GPUs)"
        return None

    def release(self, model_id: str) -> None:
        """`model_id` sleeps or was unloaded: its room is free for the others (and a model
        that fits itself fits again when it wakes)."""
        self.placements.pop(model_id, None)
        self.fitted.pop(model_id, None)


def planner_for(config: Config, gpus: list[Gpu] | None = None) -> Planner:
    source = "given"
    if gpus is None:
        gpus, source = discover(config)
    return Planner(config, gpus, source if gpus else "none (CPU)")


def plan_config(config: Config, gpus: list[Gpu] | None = None) -> Planner:
    """A planner that placed every model it could read (downloading what must be); the others
    are in its `unknown`. Without GPUs nothing is read: every replica runs on the CPU."""
    planner = planner_for(config, gpus)
    planner.plan_available(download=True)
    planner.note_sleepers()
    return planner


def kv_summary(config: Config, model: ModelConfig, fitted: Fitted | None = None) -> str:
    """A model's KV cache as planned: its types, its size for all slots, per token (and, for
    a model that fits itself, the choice)."""
    if fitted is not None:
        model = fitted.model
    elif model.context.fits:
        return "n_ctx / parallel \"auto\": fitted when it loads"
    c = model.context
    types = f"{c.cache_type_k}/{c.cache_type_v}" + (" unified" if c.kv_unified else "")
    try:
        path = resolve_model_path(model, config.server.cache_dir, local_only=True)
        kv = footprint(path, c.size, c.slots, c.n_batch, c.cache_type_k, c.cache_type_v).kv
    except (ModelSourceError, OSError, ValueError):
        return f"{types} (file not here)"
    per_token = kv / (c.size * c.slots) / 1024
    return (f"{types}: {gib(kv)} for {c.slots} x {c.size} tokens ({per_token:.1f} KiB/token)"
            + (f"; {fitted.note}" if fitted is not None else ""))


def draft_summary(model: ModelConfig) -> str:
    """Its speculation's draft model, counted in its memory above (weights and KV at f16)."""
    spec, c = model.speculation, model.context
    if spec.kind != "draft" or not spec.draft or not isinstance(c.n_ctx, int) \
            or not isinstance(c.parallel, int):
        return ""
    try:
        draft = footprint(Path(spec.draft).expanduser(), c.n_ctx, c.parallel, c.n_batch)
    except (OSError, ValueError) as exc:
        return f"; draft model unreadable: {exc}"
    return (f"; draft model {Path(spec.draft).name}: {gib(draft.total)} beside it "
            f"(KV {gib(draft.kv)})")


def plan_table(config: Config, placements: dict[str, Placement], gpus: list[Gpu],
               unknown: dict[str, str] | None = None, sleeping: dict[str, str] | None = None,
               fitted: dict[str, Fitted] | None = None) -> str:
    lines = [f"{'model':<28} {'replica':>7} {'device':<10} {'gpus':<12} {'tensor_split':<24} {'memory':>10}"]
    for model in config.models:
        if model.id in (sleeping or {}):
            lines.append(f"{model.id:<28} {'-':>7} {'sleeping':<10} {(sleeping or {})[model.id]}")
            continue
        if model.id not in placements:
            why = (unknown or {}).get(model.id, "not placed")
            lines.append(f"{model.id:<28} {'-':>7} {'unknown':<10} {why}")
            continue
        for i, r in enumerate(placements[model.id].replicas):
            device = "gpu" if r.gpus else "cpu"
            split = ",".join(f"{s:.2f}" for s in r.tensor_split) or "-"
            gpus_text = ",".join(str(g) for g in r.gpus) or "-"
            memory = gib(r.need_bytes) if r.need_bytes else "-"
            lines.append(f"{model.id:<28} {i:>7} {device:<10} {gpus_text:<12} {split:<24} {memory:>10}")
    lines.append("")
    lines.append("KV cache")  # (model ids end with a colon: rows above are keyed by the bare id)
    lines += [f"{model.id + ':':<28} {kv_summary(config, model, (fitted or {}).get(model.id))}"
              f"{draft_summary(model)}" for model in config.models]
    if gpus:
        used: dict[int, int] = {g.index: 0 for g in gpus}
        for p in placements.values():
            for r in p.replicas:
                for g, share in r.bytes_per_gpu().items():
                    used[g] += share
        lines.append("")
        lines.append(f"{'gpu':<5} {'name':<24} {'total':>10} {'planned':>10} {'left':>10}")
        reserved = set(config.server.reserved_gpus)
        for gpu in gpus:
            note = "  (reserved)" if gpu.index in reserved else ""
            lines.append(f"{gpu.index:<5} {gpu.name[:24]:<24} {gib(gpu.total_bytes):>10} "
                         f"{gib(used[gpu.index]):>10} {gib(gpu.free_bytes - used[gpu.index]):>10}{note}")
    return "\n".join(lines)

