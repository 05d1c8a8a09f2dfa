"""Prometheus metrics for `GET /metrics`, kept in the gateway process. Engines report through the
gateway (their counters arrive with their occupancy messages), so one registry in one process
sees everything: no multiprocess mode. Labels are bounded: model, route, status, class; never a
session or a client."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.engine.events import Embedded, EngineEvent, Finished
from gateway.errors import ServiceFailure
from gateway.placement.gpus import GpuReading
from gateway.config import ModelConfig
from gateway.fleet.engine_process import EngineProcess
from gateway.fleet.lifecycle import State


class Observed(Protocol):
    """What the metrics read of a model at scrape time (a served model)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> State: ...
    @property
    def load_seconds(self) -> float | None: ...
    config: ModelConfig
    replicas: list[EngineProcess]
    waiting_for_wake: int
    kv_bytes_per_token: int

RUNNING = (State.READY, State.LOADING, State.RESTARTING)  # its engines run (or start)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self, models: Callable[[], Sequence[Observed]],
                 gpus: Callable[[], list[GpuReading]] = lambda: []) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("gateway_requests", "Requests ended, by how they ended",
                                ["model", "route", "status"], registry=self.registry)
        self.ttft = Histogram("gateway_time_to_first_token_seconds", "Time to the first text",
                              ["model", "class"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.itl = Histogram("gateway_inter_token_latency_seconds", "Time between texts",
                             ["model", "class"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_wait = Histogram("gateway_queue_wait_seconds", "Time waiting for a slot",
                                    ["model", "class"], buckets=LATENCY_BUCKETS,
                                    registry=self.registry)
        self.tokens = Counter("gateway_tokens", "Tokens of ended requests",
                              ["model", "kind"], registry=self.registry)  # prompt, cached, generated
        self.registry.register(_Engines(models))
        self.registry.register(_Gpus(gpus))

    def observe(self, model: str, route: str, end: EngineEvent | ServiceFailure | None,
                ttft: float | None,
                gaps: list[float]) -> None:
        """One request ended (`end` None: its client left first)."""
        status = ("client_gone" if end is None else end.reason.value if isinstance(end, Finished)
                  else "embedded" if isinstance(end, Embedded)
                  else (end.code or "internal") if isinstance(end, ServiceFailure) else "unknown")
        self.requests.labels(model, route, status).inc()
        if not isinstance(end, Finished):
            return
        kind = "ongoing" if end.ongoing else "new"
        self.queue_wait.labels(model, kind).observe(end.queue_wait_s)
        if ttft is not None:
            self.ttft.labels(model, kind).observe(ttft)
        itl = self.itl.labels(model, kind)
        for gap in gaps:
            itl.observe(gap)
        self.tokens.labels(model, "prompt").inc(end.prompt_tokens)
        self.tokens.labels(model, "cached").inc(end.cached_tokens)
        self.tokens.labels(model, "generated").inc(end.completion_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Engines:
    """What the engines say at scrape time: slots, waiting, their own counters, restarts, where
    their conversations are, whether each model is awake and how long it took to load."""

    def __init__(self, models: Callable[[], Sequence[Observed]]) -> None:
        self.models = models

    def collect(self) -> Iterator[Metric]:
        busy = GaugeMetricFamily("gateway_slots_busy", "Sequence slots answering", labels=["model"])
        total = GaugeMetricFamily("gateway_slots", "Sequence slots", labels=["model"])
        waiting = GaugeMetricFamily("gateway_requests_waiting",
                                    "Requests waiting for a slot, or for their model to wake",
                                    labels=["model"])
        computed = CounterMetricFamily("gateway_engine_prompt_tokens_computed",
                                       "Prompt tokens the engines computed (not reused)",
                                       labels=["model"])
        drafted = CounterMetricFamily("gateway_speculation_drafted_tokens",
                                      "Tokens proposed ahead (speculation) and checked",
                                      labels=["model"])
        accepted = CounterMetricFamily("gateway_speculation_accepted_tokens",
                                       "Proposed tokens the model accepted", labels=["model"])
        restarts = CounterMetricFamily("gateway_engine_restarts", "Engine process restarts",
                                       labels=["model"])
        awake = GaugeMetricFamily("gateway_model_awake",
                                  "1 while the model's engines run, 0 asleep, unloaded, failed",
                                  labels=["model"])
        load_s = GaugeMetricFamily("gateway_model_load_seconds",
                                   "Seconds its last load (or wake) took, to ready", labels=["model"])
        held = GaugeMetricFamily("gateway_conversations",
                                 "Conversations held: resident in a slot, saved in RAM, on disk",
                                 labels=["model", "where"])
        held_bytes = GaugeMetricFamily("gateway_conversation_bytes",
                                       "Bytes of saved conversations (KV state)",
                                       labels=["model", "where"])
        budget = GaugeMetricFamily("gateway_session_cache_budget_bytes",
                                   "The engines' share of the host-RAM budget", labels=["model"])
        moves = {name: CounterMetricFamily(f"gateway_conversation_{name}", text, labels=["model"])
                 for name, text in (("spills", "Conversations moved out of a slot to the cache"),
                                    ("restores", "Conversations brought back into a slot"),
                                    ("preemptions", "Turns paused for an ongoing conversation"))}
        for served in self.models():
            model = served.id
            replicas = served.replicas
            busy.add_metric([model], sum(r.occupancy[0] for r in replicas))
            total.add_metric([model], served.config.context.slots * len(replicas)
                             if replicas else 0)  # (an "auto" size is decided as it loads)
            waiting.add_metric([model], sum(r.occupancy[1] for r in replicas)
                               + served.waiting_for_wake)
            computed.add_metric([model], sum(r.computed[0] for r in replicas))
            restarts.add_metric([model], sum(r.restarts for r in replicas))
            drafted.add_metric([model], sum(r.drafts[0] for r in replicas))
            accepted.add_metric([model], sum(r.drafts[1] for r in replicas))
            awake.add_metric([model], 1 if served.state in RUNNING else 0)
            if served.load_seconds is not None:
                load_s.add_metric([model], served.load_seconds)
            counts = [r.conversations for r in replicas]
            for where, n in (("resident", sum(c.resident for c in counts)),
                             ("ram", sum(c.in_ram for c in counts)),
                             ("disk", sum(c.on_disk for c in counts))):
                held.add_metric([model, where], n)
            held_bytes.add_metric([model, "resident"],
                                  sum(c.resident_tokens for c in counts) * served.kv_bytes_per_token)
            held_bytes.add_metric([model, "ram"], sum(c.ram_bytes for c in counts))
            held_bytes.add_metric([model, "disk"], sum(c.disk_bytes for c in counts))
            budget.add_metric([model], sum(c.ram_budget_bytes for c in counts))
            moves["spills"].add_metric([model], sum(c.spills for c in counts))
            moves["restores"].add_metric([model], sum(c.restores for c in counts))
            moves["preemptions"].add_metric([model], sum(c.preemptions for c in counts))
        yield from (busy, total, waiting, computed, drafted, accepted, restarts, awake, load_s, held, held_bytes,
                    budget, *moves.values())


class _Gpus:
    """Each GPU as its driver reads now (NVML, rocm-smi or amdgpu's sysfs), labelled by index."""

    def __init__(self, gpus: Callable[[], list[GpuReading]]) -> None:
        self.gpus = gpus

    def collect(self) -> Iterator[Metric]:
        labels = ["gpu", "name"]
        used = GaugeMetricFamily("gateway_gpu_memory_used_bytes", "GPU memory in use", labels=labels)
        total = GaugeMetricFamily("gateway_gpu_memory_total_bytes", "GPU memory", labels=labels)
        load = GaugeMetricFamily("gateway_gpu_utilization_percent", "GPU busy", labels=labels)
        heat = GaugeMetricFamily("gateway_gpu_temperature_celsius", "GPU temperature",
                                 labels=labels)
        power = GaugeMetricFamily("gateway_gpu_power_watts", "GPU power draw", labels=labels)
        for gpu in self.gpus():
            key = [str(gpu.index), gpu.name]
            used.add_metric(key, gpu.memory_used)
            total.add_metric(key, gpu.memory_total)
            for family, value in ((load, gpu.utilization), (heat, gpu.temperature_c),
                                  (power, gpu.power_w)):
                if value is not None:
                    family.add_metric(key, value)
        yield from (used, total, load, heat, power)
