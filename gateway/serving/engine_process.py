"""One engine process (a model replica), started, watched and restarted by the gateway.

Speaks the `gateway.engine.ipc` protocol over a Unix socket. Offers the engine's `submit`/`cancel`
face to the serving layer, from the event loop. When the process dies, every request in flight on it
ends with a 503 (`engine_restarting`) and the process is started again with backoff; other replicas
and models are untouched. `stop` ends it and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable

import msgspec

from gateway.engine import ipc
from gateway.engine.types import Failed, Finished, GenerationRequest, Sink

log = logging.getLogger(__name__)



class ReplicaState(str, enum.Enum):
    LOADING = "loading"
    READY = "ready"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the gateway dies, so no engine is orphaned."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class EngineProcess:
    def __init__(self, spec: ipc.WorkerSpec, env: dict[str, str] | None = None,
                 on_progress: Callable[[float], None] = lambda _f: None,
                 backoff_s: tuple[float, float] = (0.5, 30.0), max_failures: int = 5) -> None:
        self.spec = spec
        self.env = env or {}
        self.on_progress = on_progress
        self.backoff_s = backoff_s
        self.max_failures = max_failures
        self.state = ReplicaState.LOADING
        self.n_ctx_seq = spec.settings.n_ctx
        self.load = (0, 0)
        self.restarts = 0
        self.pid: int | None = None
        self.ready = asyncio.Event()
        self._sinks: dict[str, Sink] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._sinks)

    # ---- the engine face ---------------------------------------------------------------------

    def submit(self, request: GenerationRequest, sink: Sink) -> None:
        if self.state is not ReplicaState.READY or self._writer is None:
            sink(Failed(f"model `{self.spec.model_id}` is {self.state.value}", status=503,
                        code="model_not_ready", retry_after=2))
            return
        self._sinks[request.request_id] = sink
        self._writer.write(ipc.frame(ipc.Submit(request)))

    def cancel(self, request_id: str) -> None:
        if self._sinks.pop(request_id, None) is not None and self._writer is not None:
            self._writer.write(ipc.frame(ipc.Cancel(request_id)))

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self.state = ReplicaState.STOPPED
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
        self._fail_in_flight("the model was unloaded")

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("engine for %s: %s", self.spec.model_id, exc)
            if self._stopping:
                return
            self._fail_in_flight(f"the engine process for `{self.spec.model_id}` stopped; "
                                 "it is being restarted")
            failures = 1 if time.monotonic() - started > 60 else failures + 1
            if failures > self.max_failures:
                self.state = ReplicaState.FAILED
                log.error("engine for %s failed %d times in a row; giving up", self.spec.model_id,
                          failures - 1)
                return
            self.state = ReplicaState.RESTARTING
            self.ready.clear()
            self.restarts += 1
            delay = min(self.backoff_s[1], self.backoff_s[0] * 2 ** (failures - 1))
            log.warning("engine for %s exited; restarting in %.1f s", self.spec.model_id, delay)
            await asyncio.sleep(delay)

    async def _run_once(self) -> None:
        with tempfile.TemporaryDirectory(prefix="gateway-") as tmp:
            path = os.path.join(tmp, "engine.sock")
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.engine.worker", path,
                msgspec.json.encode(self.spec).decode(),
                env={**os.environ, **self.env}, preexec_fn=_die_with_parent,
            )
            self.pid = self._process.pid
            reader, self._writer = await self._connect(path)
            try:
                await self._read(reader)
            finally:
                self._writer.close()
                self._writer = None
                if self._process.returncode is None:
                    self._process.kill()
                await self._process.wait()

    async def _connect(self, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        assert self._process is not None
        deadline = time.monotonic() + 60
        while True:
            if self._process.returncode is not None:
                raise RuntimeError(f"engine process exited with {self._process.returncode}")
            try:
                return await asyncio.open_unix_connection(path)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise RuntimeError("engine process did not open its socket") from None
                await asyncio.sleep(0.02)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                header = await reader.readexactly(ipc.HEADER_SIZE)
                body = await reader.readexactly(ipc.body_size(header))
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            message = ipc.from_engine_decoder.decode(body)
            if isinstance(message, ipc.Event):
                event = message.event
                sink = self._sinks.get(message.request_id)
                if sink is not None:
                    if isinstance(event, (Finished, Failed)):
                        del self._sinks[message.request_id]
                    sink(event)
            elif isinstance(message, ipc.Load):
                self.load = (message.running, message.waiting)
            elif isinstance(message, ipc.Progress):
                self.on_progress(message.fraction)
            else:
                self.n_ctx_seq = message.n_ctx_seq
                self.state = ReplicaState.READY
                self.ready.set()

    def _fail_in_flight(self, message: str) -> None:
        sinks, self._sinks = self._sinks, {}
        for sink in sinks.values():
            sink(Failed(message, status=503, code="engine_restarting"))
        self.load = (0, 0)
