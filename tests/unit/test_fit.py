"""A model's "auto" context and slots fitted to the room its devices have left: slots first
(as many as hold `n_ctx_min` tokens each, up to the ceiling), then each conversation as long as
the rest allows (up to `n_ctx_max` and the trained context); the KV counted in its types; below
the floors an error that says what was there; a fixed model is left as it is."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from gateway.config import ModelConfig, ModelSource
from gateway.engine.settings import ContextSettings
from gateway.placement.fit import fit
from gateway.placement.footprint import footprint
from gateway.placement.plan import PlacementError
from tests.tiny_model import write_tiny_gguf

MIB = 1 << 20


def model(path: Path, **context: object) -> ModelConfig:
    return ModelConfig(id="m", source=ModelSource(path=str(path)),
                       context=ContextSettings(**context))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("fit") / "tiny.gguf")  # trained on 2048


def test_slots_first_then_the_longest_conversations_the_rest_holds(tiny: Path) -> None:
    m = model(tiny, n_ctx="auto", parallel="auto", n_ctx_min=256, n_ctx_max=1 << 20,
              parallel_max=4)
    fixed = footprint(tiny, 1, 4, 512)
    per_token = footprint(tiny, 1, 1, 512).kv
    room = fixed.weights + fixed.compute + per_token * 4 * 1000
    fitted = fit(m, tiny, room, "a test")
    c = fitted.model.context
    assert c.parallel == 4 and c.n_ctx == 768  # 1000 tokens a slot, in steps of 256
    assert "4 slots x 768 tokens" in fitted.note
    big = fit(m, tiny, room * 1000, "a test").model.context
    assert big.parallel == 4 and big.n_ctx == 2048  # the context it was trained on


def test_a_quantized_cache_holds_more(tiny: Path) -> None:
    m = model(tiny, n_ctx=256, parallel="auto", parallel_max=64, n_ctx_min=256)
    fixed = footprint(tiny, 1, 64, 512)
    room = fixed.weights + fixed.compute + footprint(tiny, 1, 1, 512).kv * 256 * 10
    f16 = fit(m, tiny, room, "x").model.context.parallel
    q8 = fit(msgspec.structs.replace(m, context=msgspec.structs.replace(
        m.context, cache_type_k="q8_0", cache_type_v="q8_0")), tiny, room, "x").model.context
    assert f16 == 10 and q8.parallel == 18  # 64/34 as many


def test_below_the_floors_it_does_not_fit_and_says_what_was_there(tiny: Path) -> None:
    m = model(tiny, n_ctx="auto", parallel=2, n_ctx_min=1024)
    fixed = footprint(tiny, 1, 2, 512)
    with pytest.raises(PlacementError, match="does not fit itself.*floors ask 1 slot"):
        fit(m, tiny, fixed.weights + fixed.compute + 10, "GPU 0")


def test_a_model_of_fixed_sizes_is_left_as_it_is(tiny: Path) -> None:
    m = model(tiny, n_ctx=512, parallel=2)
    assert fit(m, tiny, 1, "x").model is m and fit(m, tiny, 1, "x").note == ""


def _config(*models: str):  # type: ignore[no-untyped-def]
    from gateway.config import decode_config
    return decode_config("".join(models))


def test_models_that_fit_themselves_share_the_card_and_leave_the_pinned_ones_alone(
        tiny: Path, tmp_path: Path) -> None:
    from gateway.config import model_entry
    from gateway.placement.plan import Gpu
    from gateway.placement.planner import planner_for

    other = write_tiny_gguf(tmp_path / "other.gguf", seed=1)
    config = _config(model_entry("pinned", tiny, n_ctx=512, parallel=1, gpus=[0]),
                     model_entry("a", other, n_ctx="auto", parallel=2, n_ctx_min=256),
                     model_entry("b", other, n_ctx="auto", parallel=2, n_ctx_min=256))
    gib = 1 << 30
    planner = planner_for(config, [Gpu(0, "card0", gib, gib), Gpu(1, "card1", gib, gib)])
    placements = planner.plan_available()
    assert placements["pinned"].replicas[0].gpus == [0]  # where it was pinned, whole
    a, b = (planner.fitted[m].model.context.n_ctx for m in ("a", "b"))
    assert isinstance(a, int) and isinstance(b, int) and a >= 256 and b >= 256
    used: dict[int, int] = {}
    for placement in placements.values():
        for replica in placement.replicas:
            for gpu, share in replica.bytes_per_gpu().items():
                used[gpu] = used.get(gpu, 0) + share
    assert all(total <= gib for total in used.values())  # nothing promised twice


def test_an_auto_model_squeezed_by_others_fits_alone_and_again_once_they_go(
        tiny: Path, tmp_path: Path) -> None:
    """What the fleet does before putting idle models to sleep for a waking one: the squeezed
    fit fails, the fit "alone" says room can be made, and after the other leaves it fits."""
    from gateway.config import model_entry
    from gateway.placement.plan import Gpu, Placement, ReplicaPlacement
    from gateway.placement.planner import planner_for

    config = _config(model_entry("auto", tiny, n_ctx="auto", parallel=2, n_ctx_min=1024,
                                 load_at_start=False))
    gib = 1 << 30
    planner = planner_for(config, [Gpu(0, "card0", gib, gib)])
    hog = int(gib * 0.6)
    planner.placements["hog"] = Placement("hog", [ReplicaPlacement([0], [], hog, -1)])
    with pytest.raises(PlacementError, match="does not fit itself"):
        planner.fitted_model(config.models[0], tiny)
    assert planner.alone_problem(config.models[0], tiny) is None  # sleeping the hog helps
    planner.release("hog")
    assert planner.fitted_model(config.models[0], tiny).context.n_ctx == 2048
