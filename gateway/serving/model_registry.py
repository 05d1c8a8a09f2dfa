"""The models this server serves, each with its replicas (engine processes), template and names.

Builds everything from the config (no globals). Each model loads in the background: its GGUF is
resolved, its vocabulary loaded here (for tokenizing and templates: the weights live in the engine
processes), then its replicas start; a model that is slow to load never blocks the others.
Unknown names are a 404 `model_not_found`, never a fallback to another model.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec

from gateway.config import Config, ModelConfig
from gateway.engine.settings import EngineSettings
from gateway.engine.ipc import WorkerSpec
from gateway.engine.llama_backend import LlamaModel
from gateway.engine.async_client import generate
from gateway.engine.types import EngineEvent, Failed, FailureKind, GenerationRequest
from gateway.errors import ModelNotFound, Unavailable
from gateway.model_source import resolve_model_path
from gateway.placement.cpus import threads_per_engine
from gateway.placement.footprint import footprint
from gateway.placement.gpus import ReadingsCache
from gateway.placement.plan import DoesNotFitAlone, Placement, PlacementError
from gateway.placement.planner import Planner
from gateway.serving import access_log
from gateway.serving.metrics import Metrics
from gateway.serving.chat_template import ChatTemplate
from gateway.serving.engine_process import HEALED_NOTE, EngineProcess
from gateway.serving.failures import EngineFailure
from gateway.serving.lifecycle import State
from gateway.serving.residency import Residency
from gateway.serving.router import Router

log = logging.getLogger(__name__)
events = logging.getLogger("gateway.models")  # loads, sleeps and wakes: shown at any log level

ProgressReport = Callable[[str, float], None]


def engine_settings(model: ModelConfig, replica: int = 0, threads: int = 0) -> EngineSettings:
    """The engine's settings for one replica of `model`: the config's own structs, the session
    cache's directory narrowed to this replica's room, and `threads` where the config leaves
    them to the gateway (0)."""
    context = model.context
    if context.threads == 0 and threads > 0:
        context = msgspec.structs.replace(context, threads=threads)
    cache = model.session_cache
    if cache.dir is not None:  # each model replica saves into a room of its own
        # a model id never names a path: only its safe characters, never leading dots
        room = re.sub(r"[^A-Za-z0-9._-]", "_", model.id).lstrip(".") + f"-replica{replica}"
        cache = msgspec.structs.replace(cache, dir=os.path.join(os.path.expanduser(cache.dir), room))
    return EngineSettings(context, model.scheduling, cache, model.embeddings)


class ServedModel:
    def __init__(self, config: ModelConfig, cache_dir: str, planner: Planner,
                 progress: ProgressReport, threads: int = 0,
                 residency: Residency | None = None) -> None:
        self.config = config
        self.threads = threads  # each engine's CPU threads where the config says 0
        self.metrics: Metrics | None = None  # the registry's, once it holds this model
        self.cache_dir = cache_dir
        self.planner = planner
        self.placement: Placement | None = None  # where its replicas run, once its file is here
        self.progress = progress
        self.created = int(time.time())
        # the GGUF's vocabulary and metadata only (no weights): to render and tokenize prompts here
        self.tokenizer: LlamaModel | None = None
        self.template: ChatTemplate | None = None
        self.replicas: list[EngineProcess] = []
        self.router = Router()
        self.error: str | None = None
        self.wanted = config.load_at_start  # should it be serving? (/health counts it if so)
        self._loading: asyncio.Task[None] | None = None
        # the rig's side: room on the GPUs for a wake, the host-RAM shares, one load at a time
        self.residency = residency or Residency()
        self.asleep = not config.load_at_start  # engines stopped; the next request wakes it
        self.last_used = time.monotonic()  # a request arrived or ended
        self.waiting_for_wake = 0  # requests waiting for it to wake or load
        self.kv_bytes_per_token = 0  # of a conversation resident in a slot (f16 KV)
        self.last_load_s: float | None = None  # its engines' last load, kept while it sleeps
        self.healed = False  # its engines ran without llama.cpp's extra buffer types (they faulted)
        self._attempt = 0  # loads started: a waiter knows whether the one it waits for failed
        self._wake_failure: tuple[int, str] | None = None  # (attempt, why it could not wake)
        self._woken = False  # this load is a wake (a request's), not the admin's or the start's
        self._stopped: asyncio.Task[None] | None = None  # its engines stopping, if they are

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def state(self) -> State:
        if self.error is not None:
            return State.FAILED
        if self._loading is None:
            return State.SLEEPING if self.asleep else State.UNLOADED
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
    def n_ctx_seq(self) -> int:
        ready = [r.n_ctx_seq for r in self.replicas if r.state is State.READY]
        return min(ready) if ready else self.config.context.n_ctx

    @property
    def settling(self) -> bool:
        """On its way up (woken, loaded at start or by the admin) and not ready since: requests
        wait for it. A replica restarting after it served is not settling: those get a 503."""
        if self._loading is None or self.error is not None:
            return False
        if not self.replicas:
            return not self._loading.done()  # its file, vocabulary and placement come first
        return (not any(r.ready_since_start for r in self.replicas)
                and any(r.state in (State.LOADING, State.RESTARTING) for r in self.replicas))

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

    def wake(self) -> int:
        """Start loading a sleeping model (no-op otherwise); the number of the load attempt
        it waits for."""
        if self.asleep and self._loading is None:
            events.info("model %s wakes for a request", self.id)
            self.load()
            self._woken = True
        return self._attempt

    async def wait_ready(self) -> list[EngineProcess]:
        """Its ready replicas, waking it (or waiting for its load) first: a sleeping model, a
        `load_at_start = false` model and one still loading keep the request waiting instead of
        answering 503. Failed, unloaded by the admin, restarting after it served: a clear 503.
        As many may wait as the model's `max_queue`; past it, a 429 as for a full queue."""
        self.touch()
        self.check_room_to_wait()
        self.waiting_for_wake += 1
        attempt: int | None = None
        try:
            while True:
                ready = [r for r in self.replicas if r.state is State.READY]
                if ready:
                    return ready
                failure = self._wake_failure
                if self.state is State.SLEEPING:
                    if attempt is not None and failure is not None and failure[0] == attempt:
                        raise Unavailable(failure[1], code="insufficient_gpu_memory",
                                          retry_after=30)
                    attempt = self.wake()
                elif not self.settling:
                    self.require_ready()  # raises why it cannot serve
                await asyncio.sleep(0.05)
        finally:
            self.waiting_for_wake -= 1
            self.touch()

    def check_room_to_wait(self) -> None:
        """A 429 (as for a full queue) when `max_queue` requests already wait for it to load."""
        limit = self.config.scheduling.max_queue
        if limit and self.waiting_for_wake >= limit:
            raise EngineFailure(Failed(f"Too many requests are waiting for model `{self.id}` to "
                                       "load; retry later", FailureKind.QUEUE_FULL, retry_after=5))

    def load(self) -> None:
        """Start loading, unless it is loading or loaded already; a failed model (or replica)
        tries again."""
        self.wanted = True
        self.asleep = False
        self._woken = False
        if self.error is not None:
            self.error = None
            self._loading = None
            self.replicas = []
        for replica in self.replicas:
            replica.retry()
        if self._loading is None:
            self._attempt += 1
            self._loading = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        if self._stopped is not None:
            await asyncio.shield(self._stopped)  # the last engines' memory is free first
        try:
            path = await asyncio.to_thread(resolve_model_path, self.config, self.cache_dir,
                                           lambda msg: events.info("%s", msg))
            try:
                self.placement = await self._place(Path(path))
            except DoesNotFitAlone:
                raise  # putting others to sleep cannot help: `failed`, saying why
            except PlacementError as exc:
                if self._woken:
                    self._back_to_sleep(str(exc))  # the others are busy: the next request tries
                    return
                raise
            if self.tokenizer is None:
                self.tokenizer = await asyncio.to_thread(LlamaModel, path, vocab_only=True)
                self.kv_bytes_per_token = await asyncio.to_thread(self._kv_per_token, Path(path))
                source = self.tokenizer.chat_template or self.config.chat_template
                if source:
                    self.template = ChatTemplate(source, self.tokenizer.bos_text, self.tokenizer.eos_text)
        except Exception as exc:  # a missing file, a bad checksum, no network, no room on the GPUs
            self.error = str(exc)
            log.error("model %s cannot load: %s", self.id, exc)
            return
        self.replicas = [self._replica(Path(path), i) for i in range(len(self.placement.replicas))]
        self.residency.share_ram()  # before they start: each learns its share on connecting
        for replica in self.replicas:
            replica.start()

    def _kv_per_token(self, path: Path) -> int:
        """KV bytes a resident conversation holds per token (for /metrics; 0 if unreadable)."""
        context = self.config.context
        try:
            return footprint(path, context.n_ctx, 1, context.n_batch).kv // context.n_ctx
        except (OSError, ValueError):
            return 0

    async def _place(self, path: Path) -> Placement:
        """Where its replicas go; when the GPUs are short, idle models are put to sleep, least
        recently used first, until it fits (a `PlacementError` when nothing idle is left, or
        when it would not fit even alone: then nothing is put to sleep for it)."""
        while True:
            try:
                return self.planner.placement_for(self.config, path)
            except PlacementError:
                alone = self.planner.alone_problem(self.config, path)
                if alone is not None:
                    raise DoesNotFitAlone(alone) from None
                if not await self.residency.make_room(self):
                    raise

    def _back_to_sleep(self, why: str) -> None:
        log.warning("model %s cannot wake: %s", self.id, why)
        self._wake_failure = (self._attempt, f"Model `{self.id}` cannot wake: no room on the "
                              f"GPUs while the other models are busy ({why}); retry later")
        self.asleep = True
        self._loading = None

    def _replica(self, path: Path, index: int) -> EngineProcess:
        assert self.placement is not None
        where = self.placement.replicas[index]
        spec = WorkerSpec(self.id, str(path), engine_settings(self.config, index, self.threads),
                          where.n_gpu_layers, where.tensor_split)
        name = self.id if len(self.placement.replicas) == 1 else f"{self.id}#{index}"
        on_cpu = not where.gpus or where.n_gpu_layers >= 0  # some layers (or all) on the CPU
        return EngineProcess(spec, where.env(self.planner.vendor), lambda f: self.progress(name, f),
                             extra_buffers=self.config.cpu_extra_buffers, on_cpu=on_cpu,
                             load_gate=self.residency.load_gate, healed=self.healed and on_cpu)

    async def sleep(self, why: str) -> None:
        """Stop its engines and free their memory until a request wakes it (one that comes
        while they stop loads it once they are gone)."""
        events.info("model %s goes to sleep: %s", self.id, why)
        await self._stop(asleep=True)

    async def unload(self) -> None:
        """Stop its engines (the admin's unload): 503 until the admin loads it again. A `load`
        that comes while they stop starts new ones once they are gone."""
        self.wanted = False
        await self._stop(asleep=False)

    async def _stop(self, asleep: bool) -> None:
        self.asleep = asleep
        stopped = asyncio.get_running_loop().create_task(self._stop_engines())
        self._stopped = stopped
        await asyncio.shield(stopped)

    @property
    def load_seconds(self) -> float | None:
        """How long its last load (or wake) took, to ready."""
        loads = [r.load_seconds for r in self.replicas if r.load_seconds is not None]
        return max(loads) if loads else self.last_load_s

    async def _stop_engines(self) -> None:
        self.last_load_s = self.load_seconds
        # a CPU backend that faulted with extra buffer types faults again: the next wake starts
        # without them instead of crashing once more
        self.healed = self.healed or any(r.note == HEALED_NOTE for r in self.replicas)
        loading, self._loading = self._loading, None
        replicas, self.replicas = self.replicas, []
        self.router = Router()
        if loading is not None and not loading.done():
            loading.cancel()
        await asyncio.gather(*(r.stop() for r in replicas))
        self.planner.release(self.id)  # its GPU memory is free once its processes are gone
        self.residency.share_ram()
        self._stopped = None

    def require_ready(self) -> list[EngineProcess]:
        """The ready replicas; a clear 503 when there are none."""
        ready = [r for r in self.replicas if r.state is State.READY]
        if ready:
            return ready
        state = self.state
        if state is State.FAILED:
            raise Unavailable(f"Model `{self.id}` failed: {self.failure}. Fix it and POST "
                              f"/admin/models/{self.id}/load to try again", code="model_failed",
                              retry_after=60)
        if state is State.UNLOADED:
            raise Unavailable(f"Model `{self.id}` is not loaded; POST /admin/models/{self.id}/load "
                              "loads it", code="model_unloaded", retry_after=60)
        if state is State.RESTARTING:
            raise Unavailable(f"Model `{self.id}` is restarting after its engine stopped; retry "
                              "shortly", code="engine_restarting", retry_after=2)
        raise Unavailable(f"Model `{self.id}` is {state.value}; retry shortly",
                          code="model_not_ready", retry_after=2)

    def run(self, request: GenerationRequest, route: str) -> AsyncIterator[EngineEvent]:
        """The request on a replica the router picks: its events, logged and counted (for
        `route`) when it ends."""
        return access_log.logged(generate(self.pick(request), request), request, self.id, route,
                                 self.metrics, on_end=self.touch)  # idle from its last request

    def pick(self, request: GenerationRequest) -> EngineProcess:
        """The replica for this request: the one holding its conversation, else the least loaded."""
        return self.router.pick(self.require_ready(), request.session_key, request.prompt_tokens,
                                request.scope)

class ModelRegistry:
    def __init__(self, models: list[ServedModel], gpus: ReadingsCache | None = None) -> None:
        self.models = models
        self.gpus = gpus or ReadingsCache()
        self.metrics = Metrics(lambda: self.models, self.gpus.latest)
        self._by_name: dict[str, ServedModel] = {}
        for served in models:
            served.metrics = self.metrics
            for name in (served.config.id, *served.config.aliases):
                self._by_name[name] = served

    @classmethod
    def from_config(cls, config: Config, planner: Planner,
                    progress: ProgressReport = lambda _id, _f: None) -> ModelRegistry:
        # the physical cores shared out among the engine processes that start with the server; a
        # model that sleeps until a request gets the same share (counting it would halve the
        # others' speed on a CPU for a model that may never wake)
        engines = sum(m.replicas for m in config.models if m.load_at_start)
        threads = threads_per_engine(engines or sum(m.replicas for m in config.models))
        residency = Residency(config.server)
        return cls([ServedModel(m, config.server.cache_dir, planner, progress, threads, residency)
                    for m in config.models])

    def start(self) -> None:
        residencies = {id(m.residency): m.residency for m in self.models}
        for residency in residencies.values():
            residency.models = self.models
            residency.start()
        for served in self.models:
            if served.config.load_at_start:
                served.load()

    def get(self, name: str) -> ServedModel:
        try:
            return self._by_name[name]
        except KeyError:
            raise ModelNotFound(
                f"The model `{name}` does not exist. Available: {', '.join(self.names())}",
                param="model",
            ) from None

    def names(self) -> list[str]:
        return [m.id for m in self.models]

    def end_in_flight(self, message: str) -> None:
        """End every request in flight with a 503 `shutting_down` (a stream gets its error frame
        and [DONE]); their engines stop working on them."""
        for served in self.models:
            for replica in served.replicas:
                replica.fail_in_flight(message, FailureKind.SHUTTING_DOWN)

    async def close(self) -> None:
        for residency in {id(m.residency): m.residency for m in self.models}.values():
            await residency.stop()
        await asyncio.gather(*(m.unload() for m in self.models))
