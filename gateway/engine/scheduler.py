"""Scheduling policy: who is admitted, whose prefill runs, who is paused, who is turned away.

Pure: no llama.cpp, no I/O, the clock is an argument. The engine tells it facts (what waits, what
runs, how many slots are free) and carries out its `Plan`.

`latency_first`: a turn of a conversation the engine already knows (*ongoing*) goes before any *new*
conversation. New ones may take every free slot, but `reserved_slots` of them are only borrowed:
when an ongoing turn finds no free slot, a new conversation gives its slot back (preempted: one still
prefilling, else the newest borrower, whose KV is saved and which resumes where it stopped). Each
step feeds every decoding sequence's next token and shares a prompt budget, ongoing prompts first.
A new conversation waiting longer than `max_wait_s` is treated as ongoing (aging), so none starves.
`fifo`: arrival order, no reservation, no pausing (what llama-server and Ollama do).
Both bound the queue of new conversations (`max_queue`) and expire requests that waited longer than
`queue_timeout_s`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from gateway.engine.settings import Policy, SchedulerSettings


class WaitingTurn(Protocol):
    """What the scheduler reads of a waiting request. The engine's own record of a waiting turn
    is what the queue holds: there is no second copy to keep in step."""

    @property
    def request_id(self) -> str: ...
    @property
    def ongoing(self) -> bool: ...
    @property
    def arrived(self) -> float: ...
    @property
    def client(self) -> str: ...


W = TypeVar("W", bound=WaitingTurn)


@dataclass(frozen=True)
class Waiting:
    """A bare waiting request (tests and benchmarks; the engine queues its `PendingTurn`s)."""

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
    prompt_left: int = 0  # tokens still to feed before it samples (its prompt, or a resume)
    sat_out: bool = False  # it was left out of the last step


@dataclass(frozen=True)
class Plan(Generic[W]):
    """A step's decisions, in the order the engine carries them out: drop the expired, preempt
    (`pause`, running request ids), then start the admitted (taken off the queue)."""

    expired: list[W] = field(default_factory=list)
    pause: list[str] = field(default_factory=list)
    admitted: list[W] = field(default_factory=list)

    @property
    def expire(self) -> list[str]:
        return [w.request_id for w in self.expired]

    @property
    def admit(self) -> list[str]:
        return [w.request_id for w in self.admitted]


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    retry_after_s: int = 0  # when refused


class Scheduler(Generic[W]):
    """Owns the queue of waiting requests (the one record of who waits, in arrival order)."""

    def __init__(self, settings: SchedulerSettings, slots: int) -> None:
        self.settings = settings
        self.slots = slots
        self._queue: list[W] = []

    @property
    def waiting(self) -> list[W]:
        return list(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    def new_waiting(self) -> int:
        return sum(1 for w in self._queue if not w.ongoing)

    def offer(self, item: W, free_slots: int = 0) -> Verdict:
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
        client's. Ongoing turns take free slots first."""
        new = self.new_waiting()
        for_new = max(0, free_slots - (len(self._queue) - new))
        if new < for_new:
            return True
        per_client = self.settings.max_queue_per_client
        if per_client and sum(1 for w in self._queue
                              if not w.ongoing and w.client == client) >= per_client:
            return False
        return new - for_new < self.settings.max_queue

    def remove(self, request_id: str) -> W | None:
        """Take a request off the queue (cancelled); None when it does not wait."""
        item = next((w for w in self._queue if w.request_id == request_id), None)
        if item is not None:
            self._queue.remove(item)
        return item

    def drain(self) -> list[W]:
        """Everything waiting, taken off the queue (shutting down)."""
        items, self._queue = self._queue, []
        return items

    def requeue(self, item: W) -> None:
        """A paused request goes back to the front of its class (it keeps its arrival time)."""
        self._queue.insert(0, item)

    def positions(self, now: float | None) -> dict[str, int]:
        """Each waiting request's 1-based place in the order it would be admitted."""
        return {w.request_id: i + 1 for i, w in enumerate(self._ordered(now))}

    def _retry_after(self) -> int:
        # a rough wait: one queue-timeout's worth spread over the slots, at least a second
        per_slot = self.new_waiting() / max(1, self.slots)
        return max(1, math.ceil(min(self.settings.queue_timeout_s, per_slot * 5)))

    def _aged(self, w: W, now: float | None) -> bool:
        return now is not None and now - w.arrived >= self.settings.max_wait_s

    def _ordered(self, now: float | None) -> list[W]:
        if self.settings.policy is Policy.FIFO:
            return sorted(self._queue, key=lambda w: w.arrived)
        # ongoing (and aged new) first, each group in arrival order
        return sorted(self._queue, key=lambda w: (not (w.ongoing or self._aged(w, now)), w.arrived))

    def plan(self, now: float, free_slots: int, running: list[Running],
             blocked: frozenset[str] = frozenset()) -> Plan[W]:
        """Decide this step. `blocked` waiting requests cannot start yet (their conversation is
        mid-turn); they keep their place."""
        plan: Plan[W] = Plan()
        timeout = self.settings.queue_timeout_s
        for w in list(self._queue):
            if now - w.arrived >= timeout:
                plan.expired.append(w)
                self._queue.remove(w)
        latency_first = self.settings.policy is Policy.LATENCY_FIRST
        new = [r for r in running if not r.ongoing] if latency_first else []
        newest_first = sorted(new, key=lambda r: r.arrived, reverse=True)
        # new conversations beyond this many hold reserved slots: borrowed, to give back
        quota = self.slots - self.settings.reserved_slots
        free = free_slots
        for w in self._ordered(now):
            if w.request_id in blocked:
                continue
            if free == 0 and w.ongoing and newest_first:  # aged newcomers don't preempt
                # a new conversation gives its slot back: one still prefilling, else a borrower
                victim = next((r for r in newest_first if r.prefilling), None)
                if victim is None and len(newest_first) > quota:
                    victim = newest_first[0]
                if victim is not None:
                    newest_first.remove(victim)
                    plan.pause.append(victim.request_id)
                    free += 1
            if free == 0:
                if self.settings.policy is Policy.FIFO:
                    break  # strict arrival order: nobody overtakes the head
                continue
            plan.admitted.append(w)
            self._queue.remove(w)
            free -= 1
        return plan

    def step_tokens(self, running: list[Running], capacity: int, chunk: int) -> dict[str, int]:
        """The step: how many tokens each running sequence feeds to this `llama_decode` (absent:
        it sits out). Prompts share a budget of `chunk` tokens (the whole batch when nothing
        decodes and nothing new is being prefilled under latency_first, or under fifo), in
        arrival order, so a new conversation's prompt moves on in every step, and every
        decoding sequence feeds its next token: streams never stall. Under latency_first, a step
        that gives an ongoing turn its first token is kept as short as on an idle server: no new
        prompt in it, and new conversations' decoders sit it out, unless they sat out the step
        before (none sits out twice in a row)."""
        prefilling = sorted((r for r in running if r.prompt_left > 0), key=lambda r: r.arrived)
        ongoing_first = (self.settings.policy is Policy.LATENCY_FIRST
                         and any(r.ongoing for r in prefilling))
        plan = {r.request_id: 1 for r in running
                if r.prompt_left == 0 and (r.ongoing or r.sat_out or not ongoing_first)}
        room = capacity - len(plan)
        if ongoing_first:
            prefilling = [r for r in prefilling if r.ongoing]
        only_ongoing = self.settings.policy is Policy.FIFO or all(r.ongoing for r in prefilling)
        budget = room if not plan and only_ongoing else min(room, chunk)
        for r in prefilling:
            if budget <= 0:
                break
            take = min(r.prompt_left, budget)
            plan[r.request_id] = take
            budget -= take
        return plan
