"""Default engine threads: the physical cores (not hyper-threads) shared out among the engines."""

from __future__ import annotations

from gateway.config import ModelConfig, ModelSource
from gateway.placement.cpus import physical_cores, threads_per_engine
from gateway.fleet.engine_process import engine_settings

HYPERTHREADED = "".join(
    f"processor\t: {cpu}\nphysical id\t: {cpu // 8}\ncore id\t\t: {cpu % 4}\n\n" for cpu in range(16))


def test_physical_cores_count_packages_and_cores_not_threads() -> None:
    assert physical_cores(HYPERTHREADED) == 8  # 2 packages x 4 cores, 2 threads each
    assert physical_cores("") >= 1  # no topology: the logical CPUs


def test_cores_are_shared_out_among_engines() -> None:
    assert threads_per_engine(1, cores=8) == 8
    assert threads_per_engine(3, cores=8) == 2
    assert threads_per_engine(12, cores=8) == 1  # never none


def test_a_configured_thread_count_wins() -> None:
    model = ModelConfig(id="m", source=ModelSource(path="/m.gguf"))
    assert engine_settings(model, 0, threads=3).context.threads == 3
    pinned = ModelConfig(id="m", source=ModelSource(path="/m.gguf"),
                         context=model.context.__class__(threads=5))
    assert engine_settings(pinned, 0, threads=3).context.threads == 5


def test_a_model_asleep_until_asked_takes_no_share_of_the_cores() -> None:
    from gateway.config import decode_config
    from gateway.placement.planner import planner_for
    from gateway.fleet.registry import ModelRegistry

    def shares(second: str) -> list[int]:
        config = decode_config('[server]\ngpu_discovery = "declared"\n'
                               '[[models]]\nid = "a"\nsource = { path = "/a.gguf" }\n'
                               f'[[models]]\nid = "b"\nsource = {{ path = "/b.gguf" }}\n{second}')
        registry = ModelRegistry.from_config(config, planner_for(config))
        return [m.threads for m in registry.models]

    cores = physical_cores()
    assert shares("load_at_start = false\n") == [cores, cores]
    assert shares("") == [max(1, cores // 2)] * 2
