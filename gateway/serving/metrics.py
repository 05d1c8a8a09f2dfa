"""Prometheus metrics for `GET /metrics`, kept in the gateway process. Engines report through the
gateway (their counters arrive with their occupancy messages), so one registry in one process
sees everything: no multiprocess mode. Labels are bounded: model, route, status, class; never a
session or a client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.engine.types import Embedded, EngineEvent, Failed, Finished

if TYPE_CHECKING:
    from gateway.serving.model_registry import ServedModel

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self, models: Callable[[], list[ServedModel]]) -> None:
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

    def observe(self, model: str, route: str, end: EngineEvent | None, ttft: float | None,
                gaps: list[float]) -> None:
        """One request ended (`end` None: its client left first)."""
        status = ("client_gone" if end is None else end.reason.value if isinstance(end, Finished)
                  else "embedded" if isinstance(end, Embedded)
                  else end.kind.value if isinstance(end, Failed) else "unknown")
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
    """What the engines say at scrape time: slots, waiting, their own counters, restarts."""

    def __init__(self, models: Callable[[], list[ServedModel]]) -> None:
        self.models = models

    def collect(self) -> Iterator[Metric]:
        busy = GaugeMetricFamily("gateway_slots_busy", "Sequence slots answering", labels=["model"])
        total = GaugeMetricFamily("gateway_slots", "Sequence slots", labels=["model"])
        waiting = GaugeMetricFamily("gateway_requests_waiting", "Requests waiting for a slot",
                                    labels=["model"])
        computed = CounterMetricFamily("gateway_engine_prompt_tokens_computed",
                                       "Prompt tokens the engines computed (not reused)",
                                       labels=["model"])
        restarts = CounterMetricFamily("gateway_engine_restarts", "Engine process restarts",
                                       labels=["model"])
        for served in self.models():
            model = served.id
            replicas = served.replicas
            busy.add_metric([model], sum(r.occupancy[0] for r in replicas))
            total.add_metric([model], served.config.context.parallel * len(replicas))
            waiting.add_metric([model], sum(r.occupancy[1] for r in replicas))
            computed.add_metric([model], sum(r.computed[0] for r in replicas))
            restarts.add_metric([model], sum(r.restarts for r in replicas))
        yield from (busy, total, waiting, computed, restarts)
