"""An engine process: loads one model replica, runs its engine, serves it over a Unix socket.

Started by the gateway's supervisor as `python -m gateway.engine.process.worker SOCKET SPEC_JSON`. It
listens on SOCKET, accepts the gateway's one connection, reports load progress, warms up (a decode
through the batch path; only then is it `Ready`), then turns `Submit`
and `CancelRequest` frames into engine calls and sends engine events back. A writer thread batches events
so the engine thread never waits on the socket. When the gateway goes away, the process exits.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import queue
import socket
import sys
import threading
import time
from pathlib import Path

import msgspec

from gateway.engine.process import ipc
from gateway.engine.engine import Engine
from gateway.engine.process.failpoints import SLOW_LOAD_S, Failpoints, trigger
from gateway.engine.llama_backend import LlamaModel
from gateway.engine.events import Sink

log = logging.getLogger("gateway.engine.process.worker")


class _Writer:
    """Owns the socket's sending side; anyone may `send`, one thread writes."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._queue: queue.SimpleQueue[ipc.FromEngine | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ipc-writer", daemon=True)
        self._thread.start()

    def send(self, message: ipc.FromEngine) -> None:
        self._queue.put(message)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:  # coalesce what is already there into one write
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            messages = [m for m in batch if m is not None]
            try:
                if messages:
                    self._conn.sendall(ipc.frame_batch(messages))
            except OSError:
                return
            if len(messages) != len(batch):
                return


def _read_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def census(engine: Engine) -> ipc.Conversations:
    """Where the engine's conversations are (read on the engine thread, where they move)."""
    store = engine.conversations
    held = [s for s in store.slots.slots if s.session is not None and s.tokens]
    in_ram, ram_bytes, on_disk, disk_bytes = engine.cache.usage()
    return ipc.Conversations(len(held), store.held_cells(), in_ram, ram_bytes,
                             engine.cache.budget_bytes, on_disk, disk_bytes, store.spilled,
                             store.restored, engine.stats.paused, engine.cache.pushed_out,
                             engine.cache.other_kv_type, store.restores_refused)


def serve(socket_path: str, spec: ipc.WorkerSpec) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(1)
    conn, _ = listener.accept()
    listener.close()
    writer = _Writer(conn)
    last = [0.0]
    failpoints = Failpoints.from_env(spec.model_id)
    slow_from = time.monotonic() if failpoints.action("engine.load") == "slow" else None

    def progress(fraction: float) -> None:
        if slow_from is not None:  # the failpoint: as far along as SLOW_LOAD_S says
            time.sleep(max(0.0, slow_from + SLOW_LOAD_S * fraction - time.monotonic()))
        now = time.monotonic()
        if fraction >= 1.0 or now - last[0] > 0.1:
            last[0] = now
            writer.send(ipc.Progress(fraction))

    trigger(failpoints.action("engine.load"), spec.extra_buffers)
    model = LlamaModel(Path(spec.path), spec.n_gpu_layers, progress, spec.tensor_split or None,
                       extra_buffers=spec.extra_buffers)
    speculation = spec.settings.speculation
    draft = (LlamaModel(Path(os.path.expanduser(speculation.draft)), spec.n_gpu_layers, None,
                        spec.tensor_split or None, extra_buffers=spec.extra_buffers)
             if speculation.kind == "draft" and speculation.draft else None)
    def occupancy(now: tuple[int, int]) -> None:
        stats = engine.stats
        writer.send(ipc.Occupancy(*now, stats.prompt_tokens_computed, stats.tokens_generated,
                                  census(engine), stats.tokens_drafted, stats.drafts_accepted))

    engine = Engine(model, spec.settings, on_occupancy=occupancy,
                    decode_failpoint=failpoints.action("engine.decode"), draft_model=draft)
    writer.send(ipc.WarmingUp())
    engine.start()  # warms up first: a backend that cannot decode dies or raises here, never Ready
    writer.send(ipc.Ready(engine.n_ctx_seq, engine.ctx.kv_note, engine.speculation_off))

    def sink_for(request_id: str) -> Sink:
        return lambda event: writer.send(ipc.Event(request_id, event))

    try:
        while True:
            header = _read_exactly(conn, ipc.HEADER_SIZE)
            if header is None:
                break
            body = _read_exactly(conn, ipc.body_size(header))
            if body is None:
                break
            message = ipc.to_engine_decoder.decode(body)
            if isinstance(message, ipc.Submit):
                engine.submit(message.request, sink_for(message.request.request_id))
            elif isinstance(message, ipc.RamShare):
                engine.set_ram_budget(message.budget_bytes)
            else:
                engine.cancel(message.request_id)
    finally:
        engine.stop()
        writer.close()
        model.close()


def main() -> None:
    faulthandler.enable()  # a fatal signal leaves a Python traceback on stderr: the gateway shows it
    logging.basicConfig(level=os.environ.get("GATEWAY_ENGINE_LOG", "WARNING"),
                        format=f"%(asctime)s %(levelname)s engine[{os.getpid()}] %(name)s: %(message)s")
    socket_path, spec_json = sys.argv[1], sys.argv[2]
    spec = msgspec.json.decode(spec_json, type=ipc.WorkerSpec)
    serve(socket_path, spec)


if __name__ == "__main__":
    main()
