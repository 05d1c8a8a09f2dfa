"""One model as the server serves it: its replicas (engine processes), its vocabulary, its names,
and its lifecycle: the one writer of its `Phase` (checked moves, `lifecycle.PHASE_MOVES`).

It loads in the background: its GGUF is resolved, its vocabulary loaded here (to render and
tokenize prompts: the weights live in the engine processes), its replicas placed and started; a
model that is slow to load never blocks the others. `ensure_ready` waits for it on an event that
every move of the model or of one of its replicas sets, never by polling.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from gateway.config import ModelConfig
from gateway.engine.events import EngineEvent
from gateway.engine.llama_backend import LlamaModel
from gateway.engine.process.ipc import WorkerSpec
from gateway.engine.requests import GenerationRequest
from gateway.errors import Failure, ServiceFailure
from gateway.fleet import access_log
from gateway.fleet.engine_process import HEALED_NOTE, EngineProcess, engine_settings
from gateway.fleet.lifecycle import Phase, State, step
from gateway.fleet.metrics import Metrics
from gateway.fleet.request_events import request_events
from gateway.fleet.residency import Residency
from gateway.fleet.router import Router
from gateway.model_source import resolve_model_path
from gateway.placement.footprint import footprint
from gateway.placement.plan import DoesNotFitAlone, Placement, PlacementError
from gateway.placement.planner import Planner

log = logging.getLogger(__name__)
events = logging.getLogger("gateway.models")  # loads, sleeps and wakes: shown at any log level

ProgressReport = Callable[[str, float], None]


class ServedModel:
    def __init__(self, config: ModelConfig, cache_dir: str, planner: Planner,
                 progress: ProgressReport, threads: int = 0,
                 residency: Residency | None = None) -> None:
        self.config = config  # as it runs: "auto" sizes decided when it loads
        self.asked = config  # as configured
        self.threads = threads  # each engine's CPU threads where the config says 0
        self.metrics: Metrics | None = None  # the registry's, once it holds this model
        self.cache_dir = cache_dir
        self.planner = planner
        self.placement: Placement | None = None  # where its replicas run, once its file is here
        self.progress = progress
        self.created = int(time.time())
        # the GGUF's vocabulary and metadata only (no weights): to render and tokenize prompts here
        self.tokenizer: LlamaModel | None = None
        self.path: Path | None = None  # its GGUF, once resolved
        self.replicas: list[EngineProcess] = []
        self.router = Router()
        self.error: str | None = None  # why it is `failed` (its own load error)
        self.wanted = config.load_at_start  # should it be serving? (/health counts it if so)
        self._phase = Phase.UNLOADED if config.load_at_start else Phase.SLEEPING
        self._stopping_to = Phase.SLEEPING  # where a stop ends
        self._changed = asyncio.Event()  # set (and replaced) on every move of it or its replicas
        self._task: asyncio.Task[None] | None = None  # its preparation, while it prepares
        self._stopped: asyncio.Task[None] | None = None  # its engines stopping, if they are
        # the rig's side: room on the GPUs for a wake, the host-RAM shares, one load at a time
        self.residency = residency or Residency()
        self.last_used = time.monotonic()  # a request arrived or ended
        self.waiting_for_wake = 0  # requests waiting for it to wake or load
        self.kv_bytes_per_token = 0  # of a conversation resident in a slot, in its cache types
        self.last_load_s: float | None = None  # its engines' last load, kept while it sleeps
        self.healed = False  # its engines ran without llama.cpp's extra buffer types (they faulted)
        self._attempt = 0  # preparations started: a waiter knows whether the one it waits for failed
        self._wake_failure: tuple[int, str] | None = None  # (attempt, why it could not wake)
        self._woken = False  # this load is a wake (a request's), not the admin's or the start's
        # a client's own keep-alive for it (Ollama's `keep_alive`): in force from its request on
        self.keep_alive_override: float | None = None

    @property
    def id(self) -> str:
        return self.config.id

    # ---- its state ---------------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self._phase

    def _move(self, new: Phase) -> None:
        """The one writer of its phase: a checked move, then everyone waiting is told."""
        self._phase = step(self._phase, new)
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @property
    def state(self) -> State:
        phase = self._phase
        if phase is Phase.FAILED:
            return State.FAILED
        if phase is Phase.STOPPING:
            phase = self._stopping_to
        if phase in (Phase.SLEEPING, Phase.UNLOADED):
            return State.SLEEPING if phase is Phase.SLEEPING else State.UNLOADED
        states = {r.state for r in self.replicas}
        if State.READY in states:
            return State.READY
        if State.RESTARTING in states:
            return State.RESTARTING
        if states and states <= {State.FAILED}:
            return State.FAILED
        return State.LOADING

    @property
    def failure(self) -> str | None:
        """Why it cannot serve: its own load error, else a failed replica's reason."""
        if self.error is not None:
            return self.error
        return next((r.failure for r in self.replicas
                     if r.state is State.FAILED and r.failure), None)

    @property
    def pool_held(self) -> int | None:
        """With one KV pool for its conversations: the most of it a ready replica's hold now."""
        ready = [r.conversations.resident_tokens for r in self.replicas if r.state is State.READY]
        return max(ready) if ready and self.config.context.kv_unified else None

    @property
    def n_ctx_seq(self) -> int:
        ready = [r.n_ctx_seq for r in self.replicas if r.state is State.READY]
        c = self.config.context
        return min(ready) if ready else c.n_ctx if isinstance(c.n_ctx, int) else c.n_ctx_min

    @property
    def settling(self) -> bool:
        """On its way up (woken, loaded at start or by the admin) and not ready since: requests
        wait for it. A replica restarting after it served is not settling: those get a 503."""
        if self._phase is Phase.PREPARING:
            return True
        if self._phase is not Phase.STARTED:
            return False
        return (not any(r.ready_since_start for r in self.replicas)
                and any(r.state in (State.LOADING, State.RESTARTING) for r in self.replicas))

    @property
    def must_wait(self) -> bool:
        """Whether a request waits for it (it sleeps or is on its way up) rather than running
        now; where it cannot serve and will not by waiting, the failure that says so (a 503;
        a 429 when `max_queue` requests already wait for it)."""
        if any(r.state is State.READY for r in self.replicas):
            return False
        if self.state is State.SLEEPING or self.settling:
            self.check_room_to_wait()
            return True
        self.require_ready()  # raises: there is no ready replica
        return False

    @property
    def busy(self) -> int:
        """Requests it holds: in its engines, or waiting for it to wake."""
        return sum(r.in_flight for r in self.replicas) + self.waiting_for_wake

    @property
    def load_progress(self) -> float:
        """Of its weights loaded (0-1), over its replicas."""
        if not self.replicas:
            return 0.0
        return sum(1.0 if r.ready_since_start else r.load_fraction
                   for r in self.replicas) / len(self.replicas)

    def touch(self) -> None:
        self.last_used = time.monotonic()

    @property
    def idle_since(self) -> float:
        """Its last request's arrival or end, or when it got ready, whichever came last."""
        ready = [r.ready_at for r in self.replicas if r.ready_at is not None]
        return max([self.last_used, *ready])

    @property
    def keep_alive_s(self) -> float | None:
        """Idle seconds before it sleeps (None: never): the config's, unless a client set its
        own (`inf`: never)."""
        keep = self.keep_alive_override
        if keep is None:
            return self.config.keep_alive_s
        return None if keep == float("inf") else keep

    @property
    def load_seconds(self) -> float | None:
        """How long its last load (or wake) took, to ready."""
        loads = [r.load_seconds for r in self.replicas if r.load_seconds is not None]
        return max(loads) if loads else self.last_load_s

    # ---- waiting for it ------------------------------------------------------------------------

    async def ensure_ready(self) -> list[EngineProcess]:
        """Its ready replicas, waking it (or waiting for its load) first: a sleeping model, a
        `load_at_start = false` model and one still loading keep the request waiting instead of
        answering 503. Failed, unloaded by the admin, restarting after it served: a clear 503.
        As many may wait as the model's `max_queue`; past it, a 429 as for a full queue."""
        self.touch()
        if not self.must_wait:
            return self.require_ready()
        self.check_room_to_wait()
        self.waiting_for_wake += 1
        attempt: int | None = None
        try:
            while True:
                changed = self._changed
                ready = [r for r in self.replicas if r.state is State.READY]
                if ready:
                    return ready
                failure = self._wake_failure
                if self._phase is Phase.SLEEPING:
                    if attempt is not None and failure is not None and failure[0] == attempt:
                        raise ServiceFailure(Failure.NO_GPU_ROOM, failure[1])
                    attempt = self.wake()
                    continue
                if not self.settling and self._phase is not Phase.STOPPING:  # stopping: wait
                    self.require_ready()  # raises why it cannot serve
                await changed.wait()
        finally:
            self.waiting_for_wake -= 1
            self.touch()

    def check_room_to_wait(self) -> None:
        """A 429 (as for a full queue) when `max_queue` requests already wait for it to load."""
        limit = self.config.scheduling.max_queue
        if limit and self.waiting_for_wake >= limit:
            raise ServiceFailure(Failure.QUEUE_FULL, f"Too many requests are waiting for model "
                                 f"`{self.id}` to load; retry later", retry_after=5)

    def require_ready(self) -> list[EngineProcess]:
        """The ready replicas; a clear 503 when there are none."""
        ready = [r for r in self.replicas if r.state is State.READY]
        if ready:
            return ready
        state = self.state
        if state is State.FAILED:
            raise ServiceFailure(Failure.MODEL_FAILED, f"Model `{self.id}` failed: {self.failure}. "
                                 f"Fix it and POST /admin/models/{self.id}/load to try again")
        if state is State.UNLOADED:
            raise ServiceFailure(Failure.MODEL_UNLOADED, f"Model `{self.id}` is not loaded; POST "
                                 f"/admin/models/{self.id}/load loads it")
        if state is State.RESTARTING:
            raise ServiceFailure(Failure.ENGINE_RESTARTING, f"Model `{self.id}` is restarting "
                                 "after its engine stopped; retry shortly")
        raise ServiceFailure(Failure.MODEL_NOT_READY,
                             f"Model `{self.id}` is {state.value}; retry shortly")

    # ---- requests ------------------------------------------------------------------------------

    def run(self, request: GenerationRequest, route: str) -> AsyncIterator[EngineEvent]:
        """The request on a replica the router picks: its events (a failure raised), logged
        and counted (for `route`) when it ends."""
        return access_log.logged(request_events(self.pick(request), request), request, self.id,
                                 route, self.metrics, on_end=self.touch)  # idle from its last request

    def pick(self, request: GenerationRequest) -> EngineProcess:
        """The replica for this request: the one holding its conversation, else the least loaded."""
        return self.router.pick(self.require_ready(), request.session_key, request.prompt_tokens,
                                request.scope)

    # ---- loading, sleeping, unloading ----------------------------------------------------------

    def wake(self) -> int:
        """Start loading a sleeping model (no-op otherwise); the number of the load attempt
        it waits for."""
        if self._phase is Phase.SLEEPING:
            events.info("model %s wakes for a request", self.id)
            self.load()
            self._woken = True
        return self._attempt

    def load(self) -> None:
        """Start loading, unless it is loading or loaded already; a failed model (or replica)
        tries again."""
        self.wanted = True
        self._woken = False
        for replica in self.replicas:
            replica.retry()
        if self._phase in (Phase.PREPARING, Phase.STARTED):
            return
        self.error = None
        if self._phase is Phase.FAILED:
            self.replicas = []
        self._attempt += 1
        self._move(Phase.PREPARING)
        self._task = asyncio.get_running_loop().create_task(self._prepare())

    def _current(self) -> bool:
        """Whether the running task is this model's preparation (a stop cancels it; a late
        wake-up of a cancelled one must not move anything)."""
        return asyncio.current_task() is self._task

    async def _prepare(self) -> None:
        try:
            await self._prepare_engines()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a missing file, a bad checksum, no network, no room on the GPUs
            if self._current():
                self.error = str(exc)
                log.error("model %s cannot load: %s", self.id, exc)
                self._move(Phase.FAILED)

    async def _prepare_engines(self) -> None:
        if self._stopped is not None:
            await asyncio.shield(self._stopped)  # the last engines' memory is free first
        path = Path(await asyncio.to_thread(resolve_model_path, self.config, self.cache_dir,
                                            lambda msg: events.info("%s", msg)))
        self.path = path
        try:
            self.placement = await self._place(path)
        except DoesNotFitAlone:
            raise  # putting others to sleep cannot help: `failed`, saying why
        except PlacementError as exc:
            if self._woken and self._current():
                self._back_to_sleep(str(exc))  # the others are busy: the next request tries
                return
            raise
        if self.tokenizer is None:
            self.tokenizer = await asyncio.to_thread(LlamaModel, path, vocab_only=True)
            self.kv_bytes_per_token = await asyncio.to_thread(self._kv_per_token, path)
        if not self._current():
            return
        self.replicas = [self._replica(path, i) for i in range(len(self.placement.replicas))]
        self.residency.share_ram()  # before they start: each learns its share on connecting
        self._move(Phase.STARTED)
        for replica in self.replicas:
            replica.start()

    def _kv_per_token(self, path: Path) -> int:
        """KV bytes a resident conversation holds per token (for /metrics; 0 if unreadable)."""
        context = self.config.context
        try:
            return footprint(path, context.size, 1, context.n_batch, context.cache_type_k,
                             context.cache_type_v).kv // context.size
        except (OSError, ValueError):
            return 0

    async def _place(self, path: Path) -> Placement:
        """Where its replicas go; when the GPUs are short, idle models are put to sleep, least
        recently used first, until it fits (a `PlacementError` when nothing idle is left, or
        when it would not fit even alone: then nothing is put to sleep for it)."""
        while True:
            try:  # a model whose context and slots are "auto": fitted to what is left now
                self.config = self.planner.fitted_model(self.asked, path)
                return self.planner.placement_for(self.config, path)
            except PlacementError:
                alone = self.planner.alone_problem(self.asked, path)
                if alone is not None:
                    raise DoesNotFitAlone(alone) from None
                if not await self.residency.make_room(self):
                    raise
                self.planner.fitted.pop(self.id, None)  # fitted again, in the room made

    def _back_to_sleep(self, why: str) -> None:
        log.warning("model %s cannot wake: %s", self.id, why)
        self._wake_failure = (self._attempt, f"Model `{self.id}` cannot wake: no room on the "
                              f"GPUs while the other models are busy ({why}); retry later")
        self._move(Phase.SLEEPING)

    def _replica(self, path: Path, index: int) -> EngineProcess:
        assert self.placement is not None
        where = self.placement.replicas[index]
        spec = WorkerSpec(self.id, str(path), engine_settings(self.config, index, self.threads),
                          where.n_gpu_layers, where.tensor_split)
        name = self.id if len(self.placement.replicas) == 1 else f"{self.id}#{index}"
        on_cpu = not where.gpus or where.n_gpu_layers >= 0  # some layers (or all) on the CPU
        return EngineProcess(spec, where.env(self.planner.vendor), lambda f: self.progress(name, f),
                             extra_buffers=self.config.cpu_extra_buffers, on_cpu=on_cpu,
                             load_gate=self.residency.load_gate, healed=self.healed and on_cpu,
                             on_change=self._notify)

    async def sleep(self, why: str) -> None:
        """Stop its engines and free their memory until a request wakes it (one that comes
        while they stop loads it once they are gone)."""
        events.info("model %s goes to sleep: %s", self.id, why)
        await self._stop(Phase.SLEEPING)

    async def unload(self) -> None:
        """Stop its engines (the admin's unload): 503 until the admin loads it again. A `load`
        that comes while they stop starts new ones once they are gone."""
        self.wanted = False
        await self._stop(Phase.UNLOADED)

    async def _stop(self, to: Phase) -> None:
        self._stopping_to = to
        preparing, self._task = self._task, None  # a load that comes now starts after the stop
        if preparing is not None and not preparing.done():
            preparing.cancel()
        self._move(Phase.STOPPING)
        stopped = asyncio.get_running_loop().create_task(self._stop_engines(self._stopped))
        self._stopped = stopped
        await asyncio.shield(stopped)

    async def _stop_engines(self, earlier: asyncio.Task[None] | None) -> None:
        try:
            if earlier is not None:
                await asyncio.shield(earlier)  # a stop already under way ends first
            self.last_load_s = self.load_seconds
            # a CPU backend that faulted with extra buffer types faults again: the next wake
            # starts without them instead of crashing once more
            self.healed = self.healed or any(r.note == HEALED_NOTE for r in self.replicas)
            replicas, self.replicas = self.replicas, []
            self.router = Router()
            await asyncio.gather(*(r.stop() for r in replicas))
            self.planner.release(self.id)  # its GPU memory is free once its processes are gone
            self.residency.share_ram()
        finally:
            if self._stopped is asyncio.current_task():
                self._stopped = None
            if self._phase is Phase.STOPPING and self._stopped is None:  # no load came meanwhile
                self._move(self._stopping_to)
