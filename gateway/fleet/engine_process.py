"""One engine process (a model replica), started, watched and restarted by the gateway.

Speaks the `gateway.engine.process.ipc` protocol over a Unix socket. Offers the engine's `submit`/`cancel`
face to the serving layer, from the event loop. A replica is `ready` only once its engine has loaded
and a warm-up decode worked. When the process dies, every request in flight on it ends with a 503
(`engine_restarting`) and it is started again with exponential backoff; after `max_failures` deaths in
a row (each within `stable_s` of its start) it stays `failed`, with the reason: how it died and the
last lines it wrote to stderr. An engine that dies by a signal before it was ready, on the CPU, with
llama.cpp's extra CPU buffer types on and `cpu_extra_buffers = "auto"`, is started once more without
them (the AMX fault in VMs). Other replicas and models are untouched. `stop` leaves no process behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Literal

import msgspec

from gateway.config import ModelConfig
from gateway.engine.process import ipc
from gateway.engine.settings import EngineSettings
from gateway.engine.events import EngineEvent, is_last
from gateway.engine.requests import GenerationRequest
from gateway.errors import Failure, ServiceFailure
from gateway.fleet.lifecycle import State, move

log = logging.getLogger(__name__)

HEALED_NOTE = "CPU backend crashed with extra buffer types; running without them"
STDERR_LINES = 8

# where one request's events go: the engine's events, or the supervisor's word that it cannot go on
Sink = Callable[[EngineEvent | ServiceFailure], None]


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the gateway dies, so no engine is orphaned."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# CUDA numbers GPUs fastest first unless told otherwise, NVML (which placement reads) by PCI
# bus: the same order for both, unless the user set one
ENGINE_ENV_DEFAULTS = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def speculation_summary(drafted: int, accepted: int, off: str | None = None) -> dict[str, object]:
    """Tokens proposed ahead and checked, those the model accepted, the share; and why it is
    off, where the engine turned it off."""
    return {"drafted": drafted, "accepted": accepted,
            "acceptance": round(accepted / drafted, 3) if drafted else None, "off": off}


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "closed its connection"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


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
    return EngineSettings(context, model.scheduling, cache, model.embeddings, model.speculation)


class EngineProcess:
    def __init__(self, spec: ipc.WorkerSpec, env: dict[str, str] | None = None,
                 on_progress: Callable[[float], None] = lambda _f: None,
                 backoff_s: tuple[float, float] = (0.5, 30.0), max_failures: int = 4,
                 stable_s: float = 60.0, extra_buffers: Literal["auto"] | bool = "auto",
                 on_cpu: bool = True, load_gate: asyncio.Semaphore | None = None,
                 healed: bool = False, on_change: Callable[[], None] = lambda: None) -> None:
        # `healed`: an earlier engine of this model healed itself: start without them at once
        self.spec = msgspec.structs.replace(spec, extra_buffers=extra_buffers is not False
                                            and not healed)
        self.env = env or {}
        self.on_progress = on_progress
        self.backoff_s = backoff_s
        self.max_failures = max_failures
        self.stable_s = stable_s
        self.extra_buffers_policy = extra_buffers
        self.on_cpu = on_cpu
        self.on_change = on_change  # told after every move of its state
        self._state = State.LOADING
        self.n_ctx_seq = spec.settings.context.size
        self.kv = ""  # how the engine holds its KV, once it is ready
        self.speculation_off: str | None = None  # and why it runs without speculation, if so
        self.running = 0  # as the engine last reported it
        self.restarts = 0
        self.pid: int | None = None
        self.failure: str | None = None  # why it is `failed`, or why it last died
        self.note: str | None = HEALED_NOTE if healed else None  # e.g. that it healed itself
        self._sinks: dict[str, Sink] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._fatal: str | None = None
        self._stopping = False
        self._gate_held: asyncio.Semaphore | None = None
        self.computed = (0, 0)  # (prompt tokens computed, tokens generated) as last reported
        self.drafts = (0, 0)  # speculation: (tokens proposed and checked, accepted)
        self.conversations = ipc.Conversations()  # where its conversations are, as last reported
        self.load_fraction = 0.0  # of its weights loaded, while loading
        self.ready_since_start = False  # it got as far as ready since `start` (a load, a wake)
        self.load_seconds: float | None = None  # from `start` to ready, the last time
        self.ready_at: float | None = None  # when it last got ready (monotonic)
        self._started_at = time.monotonic()
        self.ram_budget: int | None = None  # its session cache's share of the host's RAM budget
        self.load_gate = load_gate  # held from spawning to ready: loads one at a time if shared

    @property
    def state(self) -> State:
        return self._state

    def _move(self, new: State) -> None:
        """The one writer of its state: a checked move, then `on_change`."""
        self._state = move(self._state, new)
        self.on_change()

    @property
    def in_flight(self) -> int:
        return len(self._sinks)

    @property
    def occupancy(self) -> tuple[int, int]:
        """(running, waiting) as the gateway knows it: every request it handed this engine and
        has not heard the end of, running as the engine last said, the rest waiting."""
        running = min(self.running, len(self._sinks))
        return running, len(self._sinks) - running

    # ---- the engine face ---------------------------------------------------------------------

    def submit(self, request: GenerationRequest, sink: Sink) -> None:
        if self.state is not State.READY or self._writer is None:
            if self.state is State.FAILED:
                sink(ServiceFailure(Failure.MODEL_FAILED,
                                    f"model `{self.spec.model_id}` failed: {self.failure}"))
            else:
                sink(ServiceFailure(Failure.MODEL_NOT_READY,
                                    f"model `{self.spec.model_id}` is {self.state.value}"))
            return
        try:
            frame = ipc.frame(ipc.Submit(request))
        except (TypeError, ValueError, OverflowError) as exc:  # must not happen: validation bounds it
            log.error("cannot send request %s to the engine: %s", request.request_id, exc)
            sink(ServiceFailure(Failure.INTERNAL, "the request could not be sent to the engine"))
            return
        self._sinks[request.request_id] = sink
        self._writer.write(frame)

    def cancel(self, request_id: str) -> None:
        if self._sinks.pop(request_id, None) is not None and self._writer is not None:
            self._writer.write(ipc.frame(ipc.CancelRequest(request_id)))

    # ---- lifecycle ---------------------------------------------------------------------------

    def set_ram_budget(self, budget_bytes: int) -> None:
        """Its session cache's share of the host-RAM budget; sent now and on every start."""
        self.ram_budget = budget_bytes
        if self._writer is not None:
            self._writer.write(ipc.frame(ipc.RamShare(budget_bytes)))

    def start(self) -> None:
        self._stopping = False
        self.ready_since_start = False
        self._started_at = time.monotonic()
        self.failure = None
        self._move(State.LOADING)
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    def retry(self) -> None:
        """Start a `failed` replica afresh (the admin's load)."""
        if self.state is State.FAILED:
            self.start()

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self._move(State.UNLOADED)
        if self._writer is not None:
            self._writer.close()  # the engine sees EOF, stops, exits
        process = self._process
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_in_flight(ServiceFailure(Failure.MODEL_UNLOADED, "the model was unloaded"))

    def fail_in_flight(self, message: str) -> None:
        """End every request in flight here with a 503 (the server is shutting down), and tell
        the engine to stop working on them."""
        if self._writer is not None:
            for request_id in self._sinks:
                self._writer.write(ipc.frame(ipc.CancelRequest(request_id)))
        self._fail_in_flight(ServiceFailure(Failure.SHUTTING_DOWN, message, retry_after=5))

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            started = time.monotonic()
            was_ready = False
            try:
                was_ready = await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("engine for %s: %s", self.spec.model_id, exc)
            if self._stopping:
                return
            returncode = self._process.returncode if self._process is not None else None
            self.failure = self._reason(returncode, was_ready)
            self._fail_in_flight(ServiceFailure(
                Failure.ENGINE_RESTARTING,
                f"the engine process for `{self.spec.model_id}` stopped; it is being restarted"))
            if self._should_heal(returncode, was_ready):
                self.spec = msgspec.structs.replace(self.spec, extra_buffers=False)
                self.note = HEALED_NOTE
                log.warning("engine for %s: %s (%s); starting it again without them",
                            self.spec.model_id, HEALED_NOTE, self.failure)
                self._move(State.RESTARTING)
                self.restarts += 1
                continue
            failures = 1 if time.monotonic() - started > self.stable_s else failures + 1
            if failures >= self.max_failures:
                self._move(State.FAILED)
                log.error("engine for %s failed %d times in a row; giving up: %s",
                          self.spec.model_id, failures, self.failure)
                return
            self._move(State.RESTARTING)
            self.restarts += 1
            delay = min(self.backoff_s[1], self.backoff_s[0] * 2 ** (failures - 1))
            log.warning("engine for %s %s; restarting in %.1f s", self.spec.model_id,
                        self.failure, delay)
            await asyncio.sleep(delay)

    def _should_heal(self, returncode: int | None, was_ready: bool) -> bool:
        return (returncode is not None and returncode < 0 and not was_ready and self.on_cpu
                and self.spec.extra_buffers and self.extra_buffers_policy == "auto")

    def _reason(self, returncode: int | None, was_ready: bool) -> str:
        when = "while serving" if was_ready else "before it was ready (loading or warm-up)"
        reason = f"the engine process {describe_exit(returncode)} {when}"
        if self._fatal is not None:
            reason += f": {self._fatal}"
        if self._stderr:
            reason += "; its last output: " + " | ".join(self._stderr)
        return reason

    async def _run_once(self) -> bool:
        """Run the engine process until it ends; True if it got as far as ready."""
        self._stderr.clear()
        self._fatal = None
        self._move(State.LOADING if self.restarts == 0 else State.RESTARTING)
        self.load_fraction = 0.0
        gate = self.load_gate
        if gate is not None:
            await gate.acquire()
        self._gate_held = gate
        try:
            return await self._spawn_and_serve()
        finally:
            self._release_gate()

    def _release_gate(self) -> None:
        gate, self._gate_held = self._gate_held, None
        if gate is not None:
            gate.release()

    async def _spawn_and_serve(self) -> bool:
        with tempfile.TemporaryDirectory(prefix="gateway-") as tmp:
            path = os.path.join(tmp, "engine.sock")
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.engine.process.worker", path,
                msgspec.json.encode(self.spec).decode(),
                env={**ENGINE_ENV_DEFAULTS, **os.environ, **self.env}, preexec_fn=_die_with_parent,
                stderr=asyncio.subprocess.PIPE,
            )
            self.pid = self._process.pid
            assert self._process.stderr is not None
            echo = asyncio.get_running_loop().create_task(self._echo_stderr(self._process.stderr))
            was_ready = False
            try:
                reader, self._writer = await self._connect(path)
                if self.ram_budget is not None:
                    self._writer.write(ipc.frame(ipc.RamShare(self.ram_budget)))
                try:
                    was_ready = await self._read(reader)
                finally:
                    self._writer.close()
                    self._writer = None
            finally:
                if self._process.returncode is None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._process.wait(), 2)  # let it say why it ended
                if self._process.returncode is None:
                    self._process.kill()
                await self._process.wait()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(echo, 2)
                echo.cancel()
            return was_ready

    async def _echo_stderr(self, stream: asyncio.StreamReader) -> None:
        """Pass the engine's stderr on to ours, keeping its last lines for the failure reason."""
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip()
            if text.startswith("Fatal Python error"):  # faulthandler names the fatal signal
                self._fatal = text[:200]
            if text:
                self._stderr.append(text[:300])
            sys.stderr.write(text + "\n")

    async def _connect(self, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        assert self._process is not None
        deadline = time.monotonic() + 60
        while True:
            if self._process.returncode is not None:
                raise RuntimeError(f"engine process {describe_exit(self._process.returncode)}")
            try:
                return await asyncio.open_unix_connection(path)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise RuntimeError("engine process did not open its socket") from None
                await asyncio.sleep(0.02)

    async def _read(self, reader: asyncio.StreamReader) -> bool:
        was_ready = False
        while True:
            try:
                header = await reader.readexactly(ipc.HEADER_SIZE)
                body = await reader.readexactly(ipc.body_size(header))
            except (asyncio.IncompleteReadError, ConnectionError):
                return was_ready
            message = ipc.from_engine_decoder.decode(body)
            if isinstance(message, ipc.Event):
                event = message.event
                sink = self._sinks.get(message.request_id)
                if sink is not None:
                    if is_last(event):
                        del self._sinks[message.request_id]
                    sink(event)
            elif isinstance(message, ipc.Occupancy):
                self.running = message.running
                self.computed = (message.prompt_tokens_computed, message.tokens_generated)
                self.drafts = (message.tokens_drafted, message.drafts_accepted)
                if message.conversations is not None:
                    self.conversations = message.conversations
            elif isinstance(message, ipc.Progress):
                self.load_fraction = message.fraction
                self.on_progress(message.fraction)
            elif isinstance(message, ipc.Ready):
                was_ready = True
                self.ready_at = time.monotonic()
                if not self.ready_since_start:
                    self.load_seconds = self.ready_at - self._started_at
                    log.info("engine for %s ready in %.1f s", self.spec.model_id,
                             self.load_seconds)
                self.ready_since_start = True
                self._release_gate()  # the next model may load
                self.n_ctx_seq = message.n_ctx_seq
                self.kv, self.speculation_off = message.kv, message.speculation_off
                self.failure = None
                if self._stopping:  # a late Ready from an engine being stopped: not serving
                    return was_ready
                self._move(State.READY)

    def _fail_in_flight(self, failure: ServiceFailure) -> None:
        sinks, self._sinks = self._sinks, {}
        for sink in sinks.values():
            sink(failure.again())
        self.running = 0

    def describe(self) -> dict[str, object]:
        running, waiting = self.occupancy
        described: dict[str, object] = {
            "state": self.state.value, "pid": self.pid, "running": running,
            "waiting": waiting, "restarts": self.restarts, "error": self.failure,
            "note": self.note, "extra_buffers": self.spec.extra_buffers, "kv": self.kv,
            "prompt_tokens_computed": self.computed[0], "tokens_generated": self.computed[1],
            "speculation": speculation_summary(*self.drafts, self.speculation_off),
            "conversations": msgspec.structs.asdict(self.conversations)}
        if self.state in (State.LOADING, State.RESTARTING) and not self.ready_since_start:
            described["load_progress"] = round(self.load_fraction * 100, 1)
        return described
