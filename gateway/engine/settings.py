"""How one engine runs, one struct per concern, each declared once: the config nests the same
structs (`[models.context]`, `[models.scheduling]`, `[models.session_cache]`,
`[models.speculation]`), so their defaults and
ranges live here and nowhere else, and engine tests and benches run with what users get. They
cross the process boundary inside a `WorkerSpec`."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

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


KvType = Literal["f16", "q8_0", "q4_0"]
# bytes per K or V value: f16 2; q8_0 a 2-byte scale per 32 one-byte values; q4_0 per 32 nibbles
KV_BYTES_PER_VALUE = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


class ContextSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The llama.cpp context: its size, its sequence slots, its batches, its threads."""

    # tokens per conversation, and sequence slots decoded together; "auto": as many as the
    # memory the model's devices have left holds (after its weights), within the floor and the
    # ceiling below (`placement.fit` decides, before any engine starts)
    n_ctx: Annotated[int, msgspec.Meta(ge=16, le=1 << 24)] | Literal["auto"] = 4096
    parallel: Annotated[int, msgspec.Meta(ge=1, le=256)] | Literal["auto"] = 4
    n_ctx_min: Annotated[int, msgspec.Meta(ge=16, le=1 << 24)] = 2048
    n_ctx_max: Annotated[int, msgspec.Meta(ge=16, le=1 << 24)] = 32768
    parallel_min: Annotated[int, msgspec.Meta(ge=1, le=256)] = 1
    parallel_max: Annotated[int, msgspec.Meta(ge=1, le=256)] = 8
    n_batch: Annotated[int, msgspec.Meta(ge=1, le=1 << 16)] = 512  # tokens per llama_decode
    # prompt tokens per step while other sequences stream: short steps, smooth streams
    prefill_chunk: Annotated[int, msgspec.Meta(ge=1, le=1 << 16)] = 128
    threads: Annotated[int, msgspec.Meta(ge=0, le=1024)] = 0  # 0: the physical cores, shared among engines
    # the KV cache's types (llama-server's -ctk / -ctv): q8_0 holds twice the conversations of
    # f16, q4_0 about 3.5x; a quantized V needs flash attention
    cache_type_k: KvType = "f16"
    cache_type_v: KvType = "f16"
    flash_attn: Literal["auto", "on", "off"] = "auto"  # "auto": where the backend has it
    # one KV pool for all slots (llama-server's -kvu): copying a shared prefix is bookkeeping,
    # not a copy of a whole slot's buffer
    kv_unified: bool = False


    @property
    def size(self) -> int:
        """`n_ctx`, fitted (an "auto" left unfitted here is a bug)."""
        if self.n_ctx == "auto":
            raise ValueError('n_ctx is "auto": placement.fit decides it before engines start')
        return self.n_ctx

    @property
    def slots(self) -> int:
        """`parallel`, fitted."""
        if self.parallel == "auto":
            raise ValueError('parallel is "auto": placement.fit decides it before engines start')
        return self.parallel

    @property
    def fits(self) -> bool:
        """Whether its size or its slots are left to `placement.fit`."""
        return self.n_ctx == "auto" or self.parallel == "auto"


class SessionCacheSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where idle conversations go when their slot is needed."""

    ram_mb: Annotated[float, msgspec.Meta(ge=0)] = 512  # host RAM, a hard limit
    dir: str | None = None  # optional: spill further to disk (a room per model file and replica)
    disk_mb: Annotated[float, msgspec.Meta(ge=0)] = 4096

    @property
    def ram_bytes(self) -> int:
        return int(self.ram_mb * (1 << 20))

    @property
    def disk_bytes(self) -> int:
        return int(self.disk_mb * (1 << 20))


class SpeculationSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A model's `[models.speculation]`: tokens proposed ahead for an answer, which the model
    checks in its next step (several tokens per step where they are accepted)."""

    # "ngram": the answer's own conversation proposes them (what followed the same few tokens
    # before: edits, fill-in-the-middle, quotes); "none": one token per step
    # "draft": a smaller model with the same vocabulary proposes (`draft`, a GGUF path; it is
    # loaded beside the model, on its GPUs, with its own KV of n_ctx x parallel at f16)
    kind: Literal["ngram", "draft", "none"] = "ngram"
    draft: str | None = None
    # the most tokens a sequence may feed ahead in a step (the engine gives fewer where the step
    # cost and the sequence's acceptance say they would not pay); requests may ask for fewer
    n_max: Annotated[int, msgspec.Meta(ge=0, le=64)] = 16
    # tokens fed ahead whenever there is a proposal, whatever the step cost says (llama-server's
    # --spec-draft-n-min)
    n_min: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0
    ngram_min: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2  # the shortest tail looked up
    ngram_max: Annotated[int, msgspec.Meta(ge=1, le=16)] = 4


class EngineSettings(msgspec.Struct, frozen=True):
    context: ContextSettings = ContextSettings()
    scheduling: SchedulerSettings = SchedulerSettings()
    session_cache: SessionCacheSettings = SessionCacheSettings()  # its dir: this replica's room
    embeddings: bool = False  # also serve /v1/embeddings (a second context on the same weights)
    speculation: SpeculationSettings = SpeculationSettings()


RECURRENT_SPECULATION = ("off: a recurrent model's state cannot be cut back to before a proposed "
                         "token it rejects")


def for_model(settings: EngineSettings, recurrent: bool) -> tuple[EngineSettings, str | None]:
    """The settings a model runs with, and why they differ from its config's (None: they do
    not): a recurrent (or hybrid) model runs without speculation, since llama.cpp cannot cut its
    state back to a rejected proposal (the answer would go on from tokens the model never drew)."""
    if not recurrent or settings.speculation.kind == "none":
        return settings, None
    off = msgspec.structs.replace(settings.speculation, kind="none")
    return msgspec.structs.replace(settings, speculation=off), RECURRENT_SPECULATION
