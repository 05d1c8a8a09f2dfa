"""Which models are awake, for the rig as a whole: a model idle for its `keep_alive_s` goes to
sleep; a model waking when the GPUs are short puts the least recently used idle one to sleep
first; the host-RAM budget for saved conversations is shared among the engines that run, by
demand (`ram_shares`); on a small host engines load one at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from gateway.fleet import ram_shares
from gateway.config import ModelConfig, ServerConfig
from gateway.fleet.engine_process import EngineProcess
from gateway.fleet.lifecycle import State
from gateway.placement.cpus import host_ram_bytes


class Resident(Protocol):
    """What residency reads of a model and asks of it (a served model)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> State: ...
    @property
    def busy(self) -> int: ...
    @property
    def idle_since(self) -> float: ...
    @property
    def keep_alive_s(self) -> float | None: ...
    config: ModelConfig
    replicas: list[EngineProcess]

    async def sleep(self, why: str) -> None: ...

log = logging.getLogger(__name__)

SMALL_HOST_BYTES = 8 << 30  # below this much RAM, engines load one at a time
WATCH_EVERY_S = 0.25


class Residency:
    def __init__(self, server: ServerConfig | None = None, host_bytes: int | None = None) -> None:
        server = server or ServerConfig()
        host = host_ram_bytes() if host_bytes is None else host_bytes
        self.ram_budget_bytes = (int(server.host_ram_mb * (1 << 20)) if server.host_ram_mb is not None
                                 else host // 4)
        loads = server.parallel_loads or (1 if 0 < host < SMALL_HOST_BYTES else 0)
        self.load_gate = asyncio.Semaphore(loads) if loads else None
        self.models: Sequence[Resident] = []
        self._watcher: asyncio.Task[None] | None = None
        self._pushed_out: dict[int, int] = {}  # each engine's count at the last rebalance

    def share_ram(self) -> None:
        """Each engine's share of the host-RAM budget, equal (at most its model's own
        `session_cache.ram_mb`), when engines start or stop; `rebalance_ram` then moves the
        shares toward what each uses. The budget holds however many engines spill at once."""
        engines = [(m, r) for m in self.models for r in m.replicas]
        if not engines:
            return
        share = self.ram_budget_bytes // len(engines)
        for model, replica in engines:
            replica.set_ram_budget(min(share, model.config.session_cache.ram_bytes))

    def rebalance_ram(self) -> None:
        """Shares by demand (`ram_shares`) among the ready engines (one still loading keeps its
        share). Shrinking shares are sent first; growing ones only once every engine has
        confirmed what it was last sent, so the shares in force never sum past the budget."""
        engines = [(m, r) for m in self.models for r in m.replicas]
        ready = [(m, r) for m, r in engines if r.state is State.READY and r.ram_budget is not None]
        if not ready or any(r.conversations.ram_budget_bytes != r.ram_budget for _, r in ready):
            return  # nothing to share, or a change still on its way
        fixed = sum(r.ram_budget or 0 for m, r in engines if (m, r) not in ready)
        pushed = {id(r): r.conversations.pushed_out for _, r in ready}
        wanted = ram_shares.shares(self.ram_budget_bytes - fixed, [
            ram_shares.EngineRam(m.config.session_cache.ram_bytes, r.conversations.ram_bytes,
                                 r.ram_budget or 0,
                                 pushed[id(r)] > self._pushed_out.get(id(r), pushed[id(r)]))
            for m, r in ready])
        self._pushed_out = pushed
        step = max(self.ram_budget_bytes // 100, 1)  # moves under 1% are not worth a message
        moves = [(r, w) for (_, r), w in zip(ready, wanted) if abs(w - (r.ram_budget or 0)) >= step]
        shrinking = [(r, w) for r, w in moves if w < (r.ram_budget or 0)]
        for replica, share in shrinking or moves:
            replica.set_ram_budget(share)

    async def make_room(self, waking: Resident) -> bool:
        """Put the least recently used idle model to sleep so `waking` fits; False when no
        model is idle."""
        idle = [m for m in self.models
                if m is not waking and m.state is State.READY and m.busy == 0]
        if not idle:
            return False
        await min(idle, key=lambda m: m.idle_since).sleep(f"making room on the GPUs for {waking.id}")
        return True

    def start(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def _watch(self) -> None:
        """Models idle past their `keep_alive_s` go to sleep."""
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            self.rebalance_ram()
            now = time.monotonic()
            for model in self.models:
                keep = model.keep_alive_s
                if (keep is not None and model.state is State.READY and model.busy == 0
                        and now - model.idle_since >= keep):
                    try:
                        await model.sleep(f"idle for {keep:g} s")
                    except Exception:  # the watcher must outlive any one model's trouble
                        log.exception("model %s could not go to sleep", model.id)
