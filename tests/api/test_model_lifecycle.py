"""A served model's lifecycle under the races a busy server meets, on real engine processes (the
tiny generated GGUF): a stop while it prepares, a load while it stops, two stops at once, a
request waiting while the admin unloads it. Each ends in a state the phase table allows, with no
waiter left hanging and no engine left running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.config import decode_config
from gateway.errors import ServiceFailure
from gateway.fleet.lifecycle import Phase, State
from gateway.fleet.registry import ModelRegistry
from gateway.fleet.served_model import ServedModel
from gateway.placement.planner import planner_for
from tests.tiny_model import write_tiny_gguf

WAIT_S = 60


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path)
    return path


def registry_for(path: Path, tmp_path: Path, load_at_start: bool) -> ModelRegistry:
    config = decode_config(
        f'[server]\ngpu_discovery = "declared"\ncache_dir = "{tmp_path}"\n'
        f'[[models]]\nid = "tiny"\nsource = {{ path = "{path}" }}\n'
        f'load_at_start = {str(load_at_start).lower()}\n'
        '[models.context]\nn_ctx = 256\nparallel = 1\nthreads = 1\n')
    return ModelRegistry.from_config(config, planner_for(config))


def no_engine_runs(served: ServedModel) -> bool:
    return not served.replicas and served._stopped is None


async def test_a_stop_while_it_prepares_ends_stopped_and_it_loads_again(tiny: Path,
                                                                       tmp_path: Path) -> None:
    registry = registry_for(tiny, tmp_path, load_at_start=True)
    served = registry.models[0]
    registry.start()
    assert served.phase is Phase.PREPARING
    await served.unload()  # before its file is even resolved
    assert served.phase is Phase.UNLOADED and no_engine_runs(served)
    await asyncio.sleep(0.2)  # a cancelled preparation's late wake-ups move nothing
    assert served.phase is Phase.UNLOADED
    served.load()
    ready = await asyncio.wait_for(served.ensure_ready(), WAIT_S)
    assert ready and served.state is State.READY
    await registry.close()
    assert served.phase is Phase.UNLOADED and no_engine_runs(served)


async def test_a_load_while_it_stops_starts_once_it_stopped(tiny: Path, tmp_path: Path) -> None:
    registry = registry_for(tiny, tmp_path, load_at_start=True)
    served = registry.models[0]
    registry.start()
    await asyncio.wait_for(served.ensure_ready(), WAIT_S)
    first = served.replicas[0]
    stopping = asyncio.ensure_future(served.sleep("a test"))
    await asyncio.sleep(0)  # the stop is under way
    assert served.phase is Phase.STOPPING
    served.load()
    assert served.phase is Phase.PREPARING
    await stopping
    ready = await asyncio.wait_for(served.ensure_ready(), WAIT_S)
    assert ready and ready[0] is not first and first.state is State.UNLOADED
    await registry.close()


async def test_two_stops_at_once_end_in_the_last_one_s_state(tiny: Path, tmp_path: Path) -> None:
    registry = registry_for(tiny, tmp_path, load_at_start=True)
    served = registry.models[0]
    registry.start()
    await asyncio.wait_for(served.ensure_ready(), WAIT_S)
    await asyncio.gather(served.sleep("idle"), served.unload())
    assert served.phase is Phase.UNLOADED and served.state is State.UNLOADED
    assert no_engine_runs(served)
    await registry.close()


async def test_a_waiter_hears_of_the_admin_s_unload(tiny: Path, tmp_path: Path) -> None:
    """A request waiting for a sleeping model to wake gets the 503 that says it was unloaded,
    as soon as the unload ends (it waits on the model's event, not a poll that may miss it)."""
    registry = registry_for(tiny, tmp_path, load_at_start=False)
    served = registry.models[0]
    registry.start()
    assert served.state is State.SLEEPING and served.must_wait
    waiter = asyncio.ensure_future(served.ensure_ready())
    await asyncio.sleep(0)  # it woke the model and waits
    assert served.phase is Phase.PREPARING
    await served.unload()
    with pytest.raises(ServiceFailure) as failure:
        await asyncio.wait_for(waiter, WAIT_S)
    assert failure.value.code == "model_unloaded" and failure.value.status == 503
    assert served.waiting_for_wake == 0
    await registry.close()


async def test_a_model_that_cannot_load_fails_its_waiters_and_recovers(tiny: Path,
                                                                      tmp_path: Path) -> None:
    missing = tmp_path / "not-there.gguf"
    registry = registry_for(missing, tmp_path, load_at_start=False)
    served = registry.models[0]
    registry.start()
    with pytest.raises(ServiceFailure) as failure:
        await asyncio.wait_for(served.ensure_ready(), WAIT_S)
    assert failure.value.code == "model_failed" and served.phase is Phase.FAILED
    assert served.failure is not None
    missing.write_bytes(tiny.read_bytes())  # fixed: the admin's load tries again
    served.load()
    assert served.failure is None  # the old error is gone with the new attempt
    await asyncio.wait_for(served.ensure_ready(), WAIT_S)
    assert served.state is State.READY and served.failure is None
    await registry.close()
