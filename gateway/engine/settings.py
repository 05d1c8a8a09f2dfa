"""How one engine runs: the settings an engine process is started with (they cross the process
boundary as part of its `WorkerSpec`)."""

from __future__ import annotations

import msgspec

from gateway.engine.scheduler import Policy


class EngineSettings(msgspec.Struct, frozen=True):
    """How one engine runs. No defaults here: the config (`ModelConfig`) is their one source, so
    engine tests and benches run with the settings users get."""

    n_ctx: int
    parallel: int
    n_batch: int
    prefill_chunk: int
    threads: int
    session_cache_bytes: int
    session_cache_dir: str | None  # already namespaced for this model replica
    session_disk_bytes: int
    policy: Policy
    max_queue: int
    queue_timeout_s: float
    max_wait_s: float
    reserved_slots: int
    max_queue_per_client: int
