"""The rig's policy (no engines): which idle model sleeps to make room for a wake, and how the
host-RAM budget is shared out among the engines that run."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gateway.config import ModelConfig, ModelSource, ServerConfig
from gateway.engine.process.ipc import Conversations
from gateway.engine.settings import SessionCacheSettings
from gateway.fleet.lifecycle import State
from gateway.fleet.residency import Residency


@dataclass
class Replica:
    budgets: list[int] = field(default_factory=list)
    state: State = State.READY
    ram_budget: int | None = None
    conversations: Conversations = field(default_factory=Conversations)

    def set_ram_budget(self, n: int) -> None:
        self.budgets.append(n)
        self.ram_budget = n

    def confirm(self, used: int) -> None:
        """What the engine reports once it applied its budget, holding `used` bytes."""
        self.conversations = Conversations(ram_bytes=used, ram_budget_bytes=self.ram_budget or 0)


@dataclass
class Model:
    id: str
    idle_since: float
    busy: int = 0
    state: State = State.READY
    replicas: list[Replica] = field(default_factory=lambda: [Replica()])
    ram_mb: float = 512
    slept: list[str] = field(default_factory=list)
    keep_alive_s: float | None = None

    @property
    def config(self) -> ModelConfig:
        return ModelConfig(id=self.id, source=ModelSource(path="x"),
                           session_cache=SessionCacheSettings(ram_mb=self.ram_mb))

    async def sleep(self, why: str) -> None:
        self.slept.append(why)
        self.state = State.SLEEPING


def test_the_least_recently_used_idle_model_sleeps_for_a_wake() -> None:
    residency = Residency(ServerConfig(), host_bytes=16 << 30)
    waking = Model("new", 0.0, state=State.LOADING)
    busy = Model("busy", 1.0, busy=2)  # the oldest, but answering: never put to sleep
    older, newer = Model("older", 5.0), Model("newer", 9.0)
    asleep = Model("asleep", 2.0, state=State.SLEEPING)
    residency.models = [waking, busy, older, newer, asleep]  # type: ignore[list-item]
    assert asyncio.run(residency.make_room(waking))  # type: ignore[arg-type]
    assert older.slept == ["making room on the GPUs for new"] and not newer.slept
    assert asyncio.run(residency.make_room(waking))  # type: ignore[arg-type]
    assert newer.slept and not busy.slept
    assert not asyncio.run(residency.make_room(waking))  # type: ignore[arg-type]  # none idle


def test_the_host_ram_budget_is_shared_among_running_engines() -> None:
    residency = Residency(ServerConfig(host_ram_mb=1024), host_bytes=4 << 30)
    two = Model("two-replicas", 0.0, replicas=[Replica(), Replica()])
    small = Model("small", 0.0, ram_mb=100)  # its own cap is below the share
    residency.models = [two, small]  # type: ignore[list-item]
    residency.share_ram()
    share = (1024 << 20) // 3
    assert [r.budgets[-1] for r in two.replicas] == [share, share]
    assert small.replicas[0].budgets[-1] == 100 << 20
    small.replicas = []  # it went to sleep: the others get more
    residency.share_ram()
    assert [r.budgets[-1] for r in two.replicas] == [(1024 << 20) // 2] * 2


def test_a_small_host_loads_one_engine_at_a_time() -> None:
    assert Residency(ServerConfig(), host_bytes=4 << 30).load_gate is not None
    assert Residency(ServerConfig(), host_bytes=64 << 30).load_gate is None
    assert Residency(ServerConfig(parallel_loads=2), host_bytes=64 << 30).load_gate is not None
    # unset host_ram_mb: a quarter of the host's RAM
    assert Residency(ServerConfig(), host_bytes=4 << 30).ram_budget_bytes == 1 << 30


def test_shares_move_toward_demand_shrinking_first_then_growing_once_confirmed() -> None:
    mb = 1 << 20
    residency = Residency(ServerConfig(host_ram_mb=1000), host_bytes=64 << 30)
    busy, idle = Model("busy", 0.0, ram_mb=4000), Model("idle", 0.0, ram_mb=4000)
    residency.models = [busy, idle]  # type: ignore[list-item]
    residency.share_ram()
    b, i = busy.replicas[0], idle.replicas[0]
    assert b.budgets == [500 * mb] and i.budgets == [500 * mb]
    residency.rebalance_ram()  # not confirmed yet: nothing moves
    assert len(b.budgets) == 1 and len(i.budgets) == 1
    b.confirm(used=500 * mb)  # full
    i.confirm(used=4 * mb)  # nearly empty
    residency.rebalance_ram()
    assert i.budgets[-1] == 1000 * mb // 8 and len(b.budgets) == 1  # the shrink goes first
    residency.rebalance_ram()  # the idle one has not confirmed: the busy one waits
    assert len(b.budgets) == 1
    i.confirm(used=4 * mb)
    residency.rebalance_ram()
    assert b.budgets[-1] == 1000 * mb - 1000 * mb // 8  # then the busy one grows
    assert b.budgets[-1] + i.budgets[-1] <= 1000 * mb
    b.confirm(used=b.budgets[-1])
    residency.rebalance_ram()  # settled: no message
    assert len(b.budgets) == 2 and len(i.budgets) == 2
    i.state = State.LOADING  # (restarting) keeps its share out of the split
    b.confirm(used=b.budgets[-1])
    residency.rebalance_ram()
    assert len(b.budgets) == 2
