"""The engine: continuous batching over the sequence slots of one llama.cpp context.

One thread owns the context; others only put commands on a queue (`submit`, `cancel`), and events go
back through each request's sink. Each `step` carries out the scheduler's plan (expire, preempt,
admit; then how many tokens each sequence feeds), places turns in slots (reusing, restoring or
sharing KV), runs one `llama_decode`, and samples.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.engine import batch_step, draws
from gateway.engine.draft_step import plan_drafts
from gateway.engine.speculation.draft_model import DraftModel, same_vocabulary
from gateway.engine.kv.conversations import ConversationStore
from gateway.engine.llama_backend import (DecodeAborted, EmbeddingContext, KvLayout, LlamaContext,
                                          LlamaModel)
from gateway.engine.scheduler import Scheduler
from gateway.engine.settings import EngineSettings, Policy, for_model
from gateway.engine.kv.session_cache import SessionCache
from gateway.engine.step_cost import StepCost
from gateway.engine.embed_turn import answer_embeddings
from gateway.engine.turns import (CancelTurn, Command, EngineStats, InFlight, PendingTurn, SetRamBudget,
                                  RunningTurn, Stop)
from gateway.engine.events import Failed, FailureKind, FinishReason, Queued, Sink, TextDelta
from gateway.engine.process.failpoints import trigger
from gateway.engine.requests import GenerationRequest

log = logging.getLogger(__name__)

EMBED_SEQUENCES = 8  # inputs an embeddings pass takes at once
TIMED_STEPS = (1, 2, 4, 8, 16)  # step sizes timed at start (speculation's cost curve)


@dataclass
class Engine:
    model: LlamaModel
    settings: EngineSettings
    clock: Callable[[], float] = time.monotonic
    stats: EngineStats = field(default_factory=EngineStats)
    # called on the engine thread whenever (running, waiting) changes: routing and /health see
    # a request the moment it is admitted or ends, not on the next poll
    on_occupancy: Callable[[tuple[int, int]], None] | None = None
    decode_failpoint: str | None = None  # see `failpoints`: tests inject faults here
    draft_model: LlamaModel | None = None  # speculation's draft model (kind "draft")

    def __post_init__(self) -> None:
        self.settings, self.speculation_off = for_model(self.settings, self.model.recurrent)
        s = self.settings
        c = s.context
        fault = self.decode_failpoint
        self.ctx = LlamaContext(self.model, c.size, c.slots, c.n_batch, c.threads,
                                None if fault is None
                                else lambda: trigger(fault, self.model.extra_buffers),
                                KvLayout(c.cache_type_k, c.cache_type_v, c.flash_attn,
                                         c.kv_unified))
        self.n_ctx_seq = self.ctx.n_ctx_seq
        self.cache = SessionCache(self.model.identity, s.session_cache.ram_bytes,
                                  s.session_cache.dir, s.session_cache.disk_bytes,
                                  kv_type=f"{self.ctx.kv.type_k}/{self.ctx.kv.type_v}")
        self.conversations = ConversationStore(self.ctx, self.model.identity, c.slots,
                                               self.cache, self.clock)
        self.scheduler: Scheduler[PendingTurn] = Scheduler(s.scheduling, c.slots)  # who waits
        self.drafter = self._drafter()
        self.embedder = (EmbeddingContext(self.model, c.size, EMBED_SEQUENCES, c.threads
                                          or (os.cpu_count() or 1)) if s.embeddings else None)
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._running: list[RunningTurn] = []
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._in_flight: InFlight | None = None  # the step being decoded
        self.step_cost = StepCost()
        self._reported_occupancy = (0, 0)
        self._write_back_pending = False  # an idle conversation may need writing back

    def _drafter(self) -> DraftModel | None:
        if self.settings.speculation.kind != "draft":
            return None
        if self.draft_model is None:
            raise RuntimeError('speculation kind "draft" needs a draft model (`draft`)')
        why = same_vocabulary(self.model, self.draft_model)
        if why is not None:
            raise RuntimeError(why)
        c = self.settings.context
        return DraftModel(self.draft_model, c.size, c.slots, c.n_batch, c.threads)

    # ---- called from any thread ------------------------------------------------------------

    def submit(self, request: GenerationRequest, sink: Sink) -> None:
        """Queue a request. Its first event says whether it was accepted: `Queued` (position 0: it
        starts now) or `Failed` (429 when the queue of new conversations is full)."""
        self._commands.put(PendingTurn(request, sink, request.session_key))
        flight = self._in_flight
        if flight is not None and flight.abortable_for_ongoing and not self.model.recurrent:
            new_tokens = self.conversations.new_tokens_guess(request)
            if new_tokens is not None:
                others = flight.ongoing_decoders  # they decode in the turn's own step
                own = self.step_cost.predict(new_tokens + others, 1 + others)
                if flight.keeps_waiting(self.clock(), own, self.step_cost.predict(new_tokens, 1)):
                    self.ctx.abort()  # redone with this turn in it

    def cancel(self, request_id: str) -> None:
        self._commands.put(CancelTurn(request_id))
        flight = self._in_flight
        if flight is not None and flight.mostly_for(request_id) and not self.model.recurrent:
            self.ctx.abort()  # don't finish a step that is mostly for an abandoned request

    def start(self) -> None:
        """Start the engine thread, which first runs the warm-up decode; return once it worked, or
        raise what it raised. Every decode runs on that one thread: llama.cpp's OpenMP workers
        belong to the calling thread, and a second decoding thread ran a third slower."""
        warmed = threading.Event()
        failure: list[BaseException] = []

        def warm_up_then_run() -> None:
            try:
                self.ctx.warm_up()
                if self.settings.speculation.kind != "none":  # what proposing tokens costs
                    self.step_cost.seed_curve(self.ctx.time_steps(TIMED_STEPS))
                if self.drafter is not None:
                    self.drafter.step_seconds = self.drafter.ctx.time_steps((1,)).get(1, 0.0)
            except BaseException as exc:  # handed to the caller
                failure.append(exc)
            warmed.set()
            if not failure:
                self._run()

        self._thread = threading.Thread(target=warm_up_then_run, name="engine", daemon=True)
        self._thread.start()
        warmed.wait()
        if failure:
            raise failure[0]

    def stop(self) -> None:
        self._commands.put(Stop())
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def occupancy(self) -> tuple[int, int]:
        """(running, waiting): a racy snapshot, for health and routing only."""
        return len(self._running), len(self.scheduler)

    # ---- the engine thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopped:
                try:
                    ran = self.step()
                    self._report_occupancy()
                    if not ran:
                        self._wait_for_command()
                except Exception:  # a bug must cost the requests in flight, never the engine
                    log.exception("engine step failed; failing the requests in flight")
                    for seq in list(self._running):
                        self._fail(seq, "internal error in the engine", FailureKind.INTERNAL)
        finally:
            self._shutdown()

    def set_ram_budget(self, budget_bytes: int) -> None:
        """The session cache's new RAM budget (its share of the host's)."""
        self._commands.put(SetRamBudget(budget_bytes))

    def _report_occupancy(self, changed: bool = False) -> None:
        current = self.occupancy
        if (changed or current != self._reported_occupancy) and self.on_occupancy is not None:
            self._reported_occupancy = current
            self.on_occupancy(current)

    def _wait_for_command(self) -> None:
        # with requests waiting, wake up in time to expire or age them; idle, first make sure
        # the next newcomer will not wait for a spill
        timeout = None if not len(self.scheduler) else min(self.settings.scheduling.max_wait_s, 0.25)
        if timeout is None and self._write_back_pending:
            self._write_back_pending = self.conversations.write_back()
            self._report_occupancy(changed=self._write_back_pending)
            return
        try:
            self._handle(self._commands.get(timeout=timeout))
        except queue.Empty:
            pass

    def step(self) -> bool:
        """Handle queued commands, plan, run one batch. False when there was nothing to run."""
        while True:
            try:
                self._handle(self._commands.get_nowait())
            except queue.Empty:
                break
        if self._stopped:
            return False
        self._schedule()
        self._end_prompts_out_of_time()
        if not self._running:
            return False
        self._decode_once()
        return True

    def _handle(self, command: Command) -> None:
        self._write_back_pending = True
        if isinstance(command, PendingTurn) and command.request.embed_inputs is not None:
            answer_embeddings(self.embedder, command)
        elif isinstance(command, PendingTurn):
            self._offer(command)
        elif isinstance(command, CancelTurn):
            self._cancel(command.request_id)
        elif isinstance(command, SetRamBudget):
            self.cache.resize(command.budget_bytes)
            self._report_occupancy(changed=True)
        else:
            self._stopped = True

    def _offer(self, pending: PendingTurn) -> None:
        request = pending.request
        if request.background and (len(self.scheduler) or not self.conversations.worth_computing_ahead(
                pending.session, request.prompt_tokens, request.scope)):
            pending.sink(Failed("not begun: others wait, or it is held", FailureKind.QUEUE_FULL))
            return
        pending.arrived = self.clock()
        pending.ongoing = not pending.request.background and self.conversations.is_known(
            pending.session, pending.request.prompt_tokens, pending.request.scope)
        verdict = self.scheduler.offer(pending, free_slots=self.conversations.free_slots())
        if not verdict.accepted:
            pending.sink(Failed("Too many new conversations are waiting for this model; retry later",
                                FailureKind.QUEUE_FULL, retry_after=verdict.retry_after_s))

    def _cancel(self, request_id: str) -> None:
        pending = self.scheduler.remove(request_id)
        if pending is not None:
            pending.drop()
            return
        for seq in self._running:
            if seq.request.request_id == request_id:
                self._finish(seq, FinishReason.CANCELLED)
                return

    # ---- scheduling ----------------------------------------------------------------------------

    def _schedule(self) -> None:
        if not len(self.scheduler):
            return
        blocked = frozenset(p.request_id for p in self.scheduler.waiting
                            if self.conversations.is_busy(p.session))
        plan = self.scheduler.plan(self.clock(), self.conversations.free_slots(),
                                   [s.view() for s in self._running], blocked)
        for pending in plan.expired:
            pending.drop()
            pending.sink(Failed(f"The request waited in the queue longer than "
                                f"{self.settings.scheduling.queue_timeout_s:g} s",
                                FailureKind.QUEUE_TIMEOUT))
        for request_id in plan.pause:
            self._pause(next(s for s in self._running if s.request.request_id == request_id))
        for pending in plan.admitted:
            try:
                started = self._start(pending)
            except Exception:
                log.exception("could not start request %s", pending.request_id)
                pending.sink(Failed("internal error while starting the request"))  # INTERNAL
                continue
            if not started:  # no slot after all: back to the queue, in its place
                self.scheduler.requeue(pending)
        positions = self.scheduler.positions(self.clock())
        for pending in self.scheduler.waiting:
            position = positions.get(pending.request_id, pending.reported)
            if position != pending.reported:
                pending.reported = position
                pending.sink(Queued(position))

    def _start(self, pending: PendingTurn) -> bool:
        if pending.resume is not None:
            return self._resume(pending)
        request = pending.request
        lease = self.conversations.place(pending.session, request.prompt_tokens, request.scope)
        if lease is None:
            return False
        pending.started = self.clock()
        if pending.reported != 0:
            pending.reported = 0
            pending.sink(Queued(0))
        log.debug("start %s ongoing=%s waited=%.3fs reused=%d/%d", request.request_id[:8],
                  pending.ongoing, self.clock() - pending.arrived, lease.reused,
                  len(request.prompt_tokens))
        self._running.append(RunningTurn.begin(pending, lease.slot, lease.reused, self.model))
        self.stats.prompt_tokens_cached += lease.reused
        return True

    def _resume(self, pending: PendingTurn) -> bool:
        """A preempted turn back in a slot (its KV restored), feeding the token it had drawn."""
        seq = pending.resume
        assert seq is not None and pending.resume_tokens is not None
        tokens = [*pending.resume_tokens, seq.next_token]
        lease = self.conversations.place(pending.resume_key, tokens, pending.request.scope)
        if lease is None:
            return False
        seq.slot = lease.slot
        seq.prompt_left = tokens[lease.reused:]
        pending.resume = pending.resume_key = pending.resume_tokens = None
        self._running.append(seq)
        self.stats.resumed += 1
        return True

    def _pause(self, seq: RunningTurn) -> None:
        """Preempt a new conversation for an ongoing turn. Its KV stays in the slot (spilled when
        the slot is taken); one already answering keeps its state and resumes where it stopped."""
        self._running.remove(seq)
        pending = seq.pending
        if seq.generated > 0:
            pending.resume = seq
            pending.resume_key = seq.slot.session
            pending.resume_tokens = list(seq.slot.tokens)
        else:
            seq.sampler.free()
        self.conversations.release(seq.slot, evict_first=True)
        self.scheduler.requeue(pending)
        self.stats.paused += 1

    # ---- the batch step ----------------------------------------------------------------------

    def _decode_once(self) -> None:
        counts = self.scheduler.step_tokens([s.view() for s in self._running], self.ctx.batch.capacity,
                                            self.settings.context.prefill_chunk)
        if self.ctx.pool_cells is not None:  # one pool for all: the step is cut to its free cells
            cut = batch_step.within_pool(counts, self._running,
                                         self.conversations.room_for(sum(counts.values())),
                                         self.conversations.freed_by)
            for seq in cut.full:
                self._finish(seq, FinishReason.LENGTH)
            for seq in cut.starved:
                self._fail(seq, batch_step.POOL_FULL, FailureKind.QUEUE_FULL)
            counts = cut.counts
        room = self.ctx.batch.capacity - sum(counts.values())
        if self.ctx.pool_cells is not None:
            room = min(room, cut.spare)
        plan_drafts(self._running, counts, self.settings.speculation, self.step_cost, room,
                    self.n_ctx_seq, self.drafter)
        step = batch_step.fill(self.ctx.batch, self._running, counts, self.stats)
        if not step.turns:
            return
        started = self.clock()
        ongoing = sum(1 for t in self._running if t.pending.ongoing and not t.prompt_left)
        latency_first = self.settings.scheduling.policy is Policy.LATENCY_FIRST
        self._in_flight = InFlight(started, self.step_cost.predict(step.tokens, step.outputs),
                                   step.new_prompt, ongoing,
                                   abortable_for_ongoing=latency_first and not step.ongoing_prompt,
                                   tokens=step.tokens, shares=step.shares)
        try:
            self.ctx.decode()
        except DecodeAborted:
            batch_step.undo(step, self.ctx, self.conversations.slots, self.stats)
            return
        except RuntimeError as exc:
            log.error("decode failed: %s", exc)
            for seq in step.turns:
                self._fail(seq, f"the model failed to decode: {exc}", FailureKind.DECODE_FAILED)
            return
        finally:
            self._in_flight = None
        self.step_cost.record(step.tokens, step.outputs, self.clock() - started)
        self.stats.decode_calls += 1
        for seq in step.turns:
            if seq.logits_rows:
                self._sample(seq)

    def _sample(self, seq: RunningTurn) -> None:
        if seq.request.max_tokens == 0:  # the prompt only: its KV, cached for the next request
            self._finish(seq, FinishReason.LENGTH)
            return
        outcome = draws.draw(seq, self.ctx, self.model, self.conversations.slots, self.stats,
                             self.clock, self.n_ctx_seq)
        if outcome == draws.STUCK:
            self._fail(seq, draws.STUCK, FailureKind.GRAMMAR_STUCK)
        elif isinstance(outcome, FinishReason):
            self._finish(seq, outcome)

    def _end_prompts_out_of_time(self) -> None:
        now = self.clock()
        for seq in [s for s in self._running if s.prompt_out_of_time(now)]:
            self._finish(seq, FinishReason.LENGTH)

    def _finish(self, seq: RunningTurn, reason: FinishReason) -> None:
        self._running.remove(seq)
        seq.sampler.free()
        self.conversations.release(seq.slot)
        if seq.logprobs:  # tokens whose text a stop string held back: their logprobs still go
            seq.pending.sink(TextDelta("", seq.take_logprobs()))
        seq.pending.sink(seq.finished(reason))

    def _fail(self, seq: RunningTurn, message: str, kind: FailureKind) -> None:
        self._running.remove(seq)
        seq.sampler.free()
        self.conversations.discard(seq.slot)
        seq.pending.sink(Failed(message, kind))

    def _shutdown(self) -> None:
        for seq in list(self._running):
            self._fail(seq, "the engine is shutting down", FailureKind.SHUTTING_DOWN)
        for pending in self.scheduler.drain():
            pending.drop()
            pending.sink(Failed("the engine is shutting down", FailureKind.SHUTTING_DOWN))
        log.info("%d conversations saved to disk", self.conversations.persist())
        self.ctx.close()
        if self.embedder is not None:
            self.embedder.close()
        if self.drafter is not None:
            self.drafter.close()
