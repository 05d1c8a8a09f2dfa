"""The wire between the gateway and an engine process: length-prefixed msgpack frames.

Gateway -> engine: `Submit`, `CancelRequest`, `RamShare`. Engine -> gateway: `Progress` while loading, `WarmingUp` once
loaded, `Ready` once a warm-up decode worked, `Event` for each request's events, `Occupancy` whenever
what it runs and has waiting changes (for routing and /health).
"""

from __future__ import annotations

import struct

import msgspec

from gateway.engine.settings import EngineSettings
from gateway.engine.events import EngineEvent
from gateway.engine.requests import GenerationRequest


class WorkerSpec(msgspec.Struct, frozen=True):
    """Everything an engine process needs to start: what to load and how to run it."""

    model_id: str
    path: str
    settings: EngineSettings
    n_gpu_layers: int = 0
    tensor_split: list[float] = []
    extra_buffers: bool = True  # llama.cpp's extra CPU buffer types (AMX, repacked weights)


class Submit(msgspec.Struct, frozen=True, tag=True):
    request: GenerationRequest


class CancelRequest(msgspec.Struct, frozen=True, tag=True):
    request_id: str


class RamShare(msgspec.Struct, frozen=True, tag=True):
    """This engine's share of the host-RAM budget for saved conversations, in bytes."""

    budget_bytes: int


class Progress(msgspec.Struct, frozen=True, tag=True):
    fraction: float


class WarmingUp(msgspec.Struct, frozen=True, tag=True):
    """The weights are loaded; the warm-up decode runs next."""


class Ready(msgspec.Struct, frozen=True, tag=True):
    n_ctx_seq: int
    kv: str = ""  # how its KV is held (types, flash attention, pool), any fallback said
    speculation_off: str | None = None  # why speculation is off though the config has it on


class Event(msgspec.Struct, frozen=True, tag=True):
    request_id: str
    event: EngineEvent


class Conversations(msgspec.Struct, frozen=True):
    """Where the engine's conversations are, and what moved them, for /metrics and /health."""

    resident: int = 0  # holding a slot's KV
    resident_tokens: int = 0
    in_ram: int = 0  # saved in the session cache
    ram_bytes: int = 0
    ram_budget_bytes: int = 0
    on_disk: int = 0
    disk_bytes: int = 0
    spills: int = 0
    restores: int = 0
    preemptions: int = 0
    pushed_out: int = 0  # saved conversations RAM could not keep for want of room
    # saved on disk under another KV cache type (recomputed when they return), and restores
    # llama.cpp refused (recomputed too)
    other_kv_type: int = 0
    restores_refused: int = 0


class Occupancy(msgspec.Struct, frozen=True, tag=True):
    """Requests the engine is running and has waiting, sent whenever that changes."""

    running: int
    waiting: int
    prompt_tokens_computed: int = 0  # the engine's counts so far: what its work cost
    tokens_generated: int = 0
    conversations: Conversations | None = None
    tokens_drafted: int = 0  # speculation: tokens proposed and checked, and those accepted
    drafts_accepted: int = 0


ToEngine = Submit | CancelRequest | RamShare
FromEngine = Progress | WarmingUp | Ready | Event | Occupancy

_HEADER = struct.Struct("!I")
_encoder = msgspec.msgpack.Encoder()
to_engine_decoder = msgspec.msgpack.Decoder(ToEngine)
from_engine_decoder = msgspec.msgpack.Decoder(FromEngine)


def frame(message: ToEngine | FromEngine) -> bytes:
    body = _encoder.encode(message)
    return _HEADER.pack(len(body)) + body


def frame_batch(messages: list[FromEngine]) -> bytes:
    return b"".join(frame(m) for m in messages)


HEADER_SIZE = _HEADER.size


def body_size(header: bytes) -> int:
    return int(_HEADER.unpack(header)[0])
