"""Scheduling policy: who is admitted, whose prefill runs, who is paused, who is turned away.

Pure: no llama.cpp, no I/O, the clock is an argument. The engine tells it facts (what waits, what
runs, how many slots are free) and carries out its `Plan`.

`latency_first`: a turn of a conversation the engine already knows (*ongoing*) goes before any *new*
conversation; new ones may not take the last `reserved_slots` free slots; a new conversation still
prefilling can be paused to give its slot to an ongoing turn; ongoing prefill runs before new prefill.
A new conversation waiting longer than `max_wait_s` is treated as ongoing (aging), so none starves.
`fifo`: arrival order, no reservation, no pausing (what llama-server and Ollama do).
Both bound the queue of new conversations (`max_queue`) and expire requests that waited longer than
`queue_timeout_s`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Annotated

import msgspec


class Policy(str, enum.Enum):
    LATENCY_FIRST = "latency_first"
    FIFO = "fifo"


class SchedulerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A model's `[models.scheduling]` table: declared here once, read by the config."""

    policy: Policy = Policy.LATENCY_FIRST
    # new conversations truly waiting (no free slot); past it: 429. 0: none may wait
    max_queue: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 64
    queue_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 120.0  # then 503
    max_wait_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 10.0  # aging: a new one goes first
    reserved_slots: Annotated[int, msgspec.Meta(ge=0)] = 0  # slots new conversations may not take
    # new conversations one client (API key or address) may have waiting; 0: no limit
    max_queue_per_client: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 16


@dataclass(frozen=True)
class Waiting:
    request_id: str
    ongoing: bool
    arrived: float
    client: str = ""


@dataclass(frozen=True)
class Running:
    request_id: str
    ongoing: bool
    prefilling: bool  # has not produced its first token
    arrived: float


@dataclass(frozen=True)
class Plan:
    expire: list[str] = field(default_factory=list)
    pause: list[str] = field(default_factory=list)
    admit: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    retry_after_s: int = 0  # when refused


class Scheduler:
    def __init__(self, settings: SchedulerSettings, slots: int) -> None:
        self.settings = settings
        self.slots = slots
        self._queue: list[Waiting] = []

    @property
    def waiting(self) -> list[Waiting]:
        return list(self._queue)

    def new_waiting(self) -> int:
        return sum(1 for w in self._queue if not w.ongoing)

    def offer(self, item: Waiting, free_slots: int = 0) -> Verdict:
        """A request arrives while `free_slots` slots are idle. A new conversation is refused when
        it would have to wait and `max_queue` new conversations already truly wait: those the
        free slots will take at the next plan do not count (0 means none may wait at all)."""
        if not item.ongoing and not self._room_for_new(free_slots, item.client):
            return Verdict(False, retry_after_s=self._retry_after())
        self._queue.append(item)
        return Verdict(True)

    def _room_for_new(self, free_slots: int, client: str) -> bool:
        """Whether one more new conversation may join: it gets a slot at the next plan, or fewer
        than `max_queue` new ones truly wait and fewer than `max_queue_per_client` of its
        client's. Ongoing turns take free slots first, and under latency_first new ones leave the
        reserved slots alone."""
        new = self.new_waiting()
        for_new = free_slots - (len(self._queue) - new)
        if self.settings.policy is Policy.LATENCY_FIRST:
            for_new -= self.settings.reserved_slots
        for_new = max(0, for_new)
        if new < for_new:
            return True
        per_client = self.settings.max_queue_per_client
        if per_client and sum(1 for w in self._queue
                              if not w.ongoing and w.client == client) >= per_client:
            return False
        return new - for_new < self.settings.max_queue

    def remove(self, request_id: str) -> bool:
        before = len(self._queue)
        self._queue = [w for w in self._queue if w.request_id != request_id]
        return len(self._queue) != before

    def requeue(self, item: Waiting) -> None:
        """A paused request goes back to the front of its class (it keeps its arrival time)."""
        self._queue.insert(0, item)

    def positions(self, now: float | None) -> dict[str, int]:
        """Each waiting request's 1-based place in the order it would be admitted."""
        return {w.request_id: i + 1 for i, w in enumerate(self._ordered(now))}

    def _retry_after(self) -> int:
        # a rough wait: one queue-timeout's worth spread over the slots, at least a second
        per_slot = self.new_waiting() / max(1, self.slots)
        return max(1, math.ceil(min(self.settings.queue_timeout_s, per_slot * 5)))

    def _aged(self, w: Waiting, now: float | None) -> bool:
        return now is not None and now - w.arrived >= self.settings.max_wait_s

    def _ordered(self, now: float | None) -> list[Waiting]:
        if self.settings.policy is Policy.FIFO:
            return sorted(self._queue, key=lambda w: w.arrived)
        # ongoing (and aged new) first, each group in arrival order
        return sorted(self._queue, key=lambda w: (not (w.ongoing or self._aged(w, now)), w.arrived))

    def plan(self, now: float, free_slots: int, running: list[Running],
             blocked: frozenset[str] = frozenset()) -> Plan:
        """Decide this step. `blocked` waiting requests cannot start yet (their conversation is
        mid-turn); they keep their place."""
        plan = Plan()
        timeout = self.settings.queue_timeout_s
        for w in list(self._queue):
            if now - w.arrived >= timeout:
                plan.expire.append(w.request_id)
                self._queue.remove(w)
        latency_first = self.settings.policy is Policy.LATENCY_FIRST
        pausable = sorted(
            (r for r in running if latency_first and r.prefilling and not r.ongoing),
            key=lambda r: r.arrived, reverse=True,  # the newest arrival gives way first
        )
        free = free_slots
        for w in self._ordered(now):
            if w.request_id in blocked:
                continue
            urgent = w.ongoing or self._aged(w, now)
            if latency_first and not urgent:
                if free <= self.settings.reserved_slots:
                    continue  # the last free slots wait for ongoing turns
            elif free == 0 and w.ongoing and pausable:  # aged newcomers don't pause each other
                plan.pause.append(pausable.pop(0).request_id)
                free += 1
            if free == 0:
                if self.settings.policy is Policy.FIFO:
                    break  # strict arrival order: nobody overtakes the head
                continue
            plan.admit.append(w.request_id)
            self._queue.remove(w)
            free -= 1
        return plan

    def prefill_order(self, prefilling: list[Running]) -> list[str]:
        """Which prefills get this step's token budget, in order. Under latency_first, while an
        ongoing turn is prefilling, new conversations' prefill waits: the step stays short and the
        ongoing turn's first token comes sooner."""
        by_arrival = sorted(prefilling, key=lambda r: r.arrived)
        if self.settings.policy is Policy.FIFO:
            return [r.request_id for r in by_arrival]
        ongoing = [r.request_id for r in by_arrival if r.ongoing]
        return ongoing or [r.request_id for r in by_arrival]

    def prefill_budget(self, room: int, chunk: int, decoding: bool, ongoing_first: bool) -> int:
        """Prompt tokens this step may prefill. A chunk while streams decode, so they never freeze.
        Under latency_first a new conversation's prefill is always chunked, even when nothing else
        runs: an ongoing turn may arrive at any moment and should not wait behind a long step."""
        if ongoing_first or (not decoding and self.settings.policy is Policy.FIFO):
            return room if not decoding else min(room, chunk)
        return min(room, chunk)

    def sit_out(self, running: list[Running]) -> frozenset[str]:
        """Sequences that skip this step. Under latency_first, while an ongoing turn is prefilling,
        new conversations wait one step (decode included): the step that gives the ongoing turn its
        first token is as short as it would be on an idle server."""
        if self.settings.policy is Policy.FIFO:
            return frozenset()
        if not any(r.ongoing and r.prefilling for r in running):
            return frozenset()
        return frozenset(r.request_id for r in running if not r.ongoing)
