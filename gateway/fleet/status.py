"""What the server says about its models: each model's state, load progress, occupancy and
replicas (`/v1/models/{id}`'s `status`, the admin routes), and `/health` over them all, with the
GPUs as their drivers read now. Process ids only for callers allowed on the admin routes."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from gateway.fleet.engine_process import speculation_summary
from gateway.fleet.lifecycle import State
from gateway.fleet.registry import ModelRegistry
from gateway.fleet.served_model import ServedModel


def describe(served: ServedModel, show_processes: bool = False) -> dict[str, object]:
    """State, failure, occupancy, idle time, load progress (while loading) and replicas."""
    placed = served.placement.replicas if served.placement is not None else []
    replicas = [{**r.describe(), **(placed[i].describe() if i < len(placed) else {})}
                for i, r in enumerate(served.replicas)]
    if not show_processes:
        for replica in replicas:
            replica.pop("pid")
    described: dict[str, object] = {
        "state": served.state.value,
        "error": served.failure,
        "running": sum(r.occupancy[0] for r in served.replicas),
        "waiting": sum(r.occupancy[1] for r in served.replicas) + served.waiting_for_wake,
        "keep_alive_s": served.keep_alive_s,
        "idle_s": round(time.monotonic() - served.idle_since, 1) if not served.busy else 0.0,
        "replicas": replicas,
        "speculation": speculation_summary(
            sum(r.drafts[0] for r in served.replicas), sum(r.drafts[1] for r in served.replicas),
            next((r.speculation_off for r in served.replicas if r.speculation_off), None)),
    }
    if served.settling:
        described["load_progress"] = round(served.load_progress * 100, 1)
    fitted = served.planner.fitted.get(served.id)
    if fitted is not None:  # its "auto" context and slots, as decided
        c = fitted.model.context
        described["context"] = {"n_ctx": c.n_ctx, "parallel": c.parallel, "fit": fitted.note}
    return described


def health(registry: ModelRegistry, show_processes: bool = False) -> tuple[int, dict[str, object]]:
    """(HTTP status, body) for /health: 200 `ok` only when every model that should serve
    (loaded at start, on request or by the admin, and not asleep) is ready; 503 `loading` while
    one is on its way, else 503 `unavailable` (failed, unloaded)."""
    models = registry.models
    wanted = [m for m in models if m.wanted and m.state is not State.SLEEPING]
    status = "ok"
    if any(m.state is not State.READY for m in wanted):
        settling = (State.LOADING, State.RESTARTING)
        status = "loading" if any(m.state in settling for m in wanted) else "unavailable"
    body: dict[str, object] = {
        "status": status,
        "models": {m.id: describe(m, show_processes) for m in models},
        "gateway": {"tasks": len(asyncio.all_tasks()),
                    "in_flight": sum(r.in_flight for m in models for r in m.replicas)},
        "gpus": [dataclasses.asdict(g) for g in registry.gpus.latest()],
    }
    return (200 if status == "ok" else 503), body
