"""The models this server serves, by name: built from the config (no globals), started and
closed together. Unknown names are a 404 `model_not_found`, never a fallback to another model.
"""

from __future__ import annotations

import asyncio

from gateway.config import Config
from gateway.errors import ModelNotFound
from gateway.fleet.metrics import Metrics
from gateway.fleet.residency import Residency
from gateway.fleet.served_model import ProgressReport, ServedModel
from gateway.placement.cpus import threads_per_engine
from gateway.placement.gpus import ReadingsCache
from gateway.placement.planner import Planner


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
                replica.fail_in_flight(message)

    async def close(self) -> None:
        for residency in {id(m.residency): m.residency for m in self.models}.values():
            await residency.stop()
        await asyncio.gather(*(m.unload() for m in self.models))
