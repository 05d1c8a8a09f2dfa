"""The placement planner on declared inventories."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.placement.plan import (
    GIB,
    Footprint,
    Gpu,
    ModelDemand,
    PlacementError,
    parse_inventory,
    plan,
)


def need(gib: float) -> Footprint:
    total = int(gib * GIB)
    return Footprint(weights=total * 8 // 10, kv=total // 10, compute=total - total * 8 // 10 - total // 10)


def test_inventory_text() -> None:
    gpus = parse_inventory("5x12GiB")
    assert [g.index for g in gpus] == [0, 1, 2, 3, 4] and gpus[0].total_bytes == 12 * GIB
    mixed = parse_inventory("24GiB,12GB,8GiB")
    assert [g.total_bytes // GIB for g in mixed] == [24, 12, 8]
    with pytest.raises(ValueError):
        parse_inventory("lots")


def test_five_3060s_pack_several_models_whole_onto_cards() -> None:
    rig = parse_inventory("5x12GiB")
    demands = [ModelDemand("coder-14b", need(10.5)), ModelDemand("chat-8b", need(7.0), replicas=2),
               ModelDemand("small-3b", need(3.0))]
    placements = plan(demands, rig)
    cards = [r.gpus for p in placements.values() for r in p.replicas]
    assert all(len(g) == 1 for g in cards)
    assert len(placements["chat-8b"].replicas) == 2
    used: dict[int, float] = {}
    for p in placements.values():
        for r in p.replicas:
            used[r.gpus[0]] = used.get(r.gpus[0], 0) + r.need_bytes
    assert all(v <= 12 * GIB for v in used.values())
    # the small model shares a card rather than taking a fresh one (the snuggest fit): two of
    # the five cards stay entirely free
    assert len(used) == 3
    small = placements["small-3b"].replicas[0].gpus[0]
    assert small in {r.gpus[0] for r in placements["chat-8b"].replicas}
    assert placements["coder-14b"].replicas[0].env() == {
        "CUDA_VISIBLE_DEVICES": str(placements["coder-14b"].replicas[0].gpus[0])}


def test_mixed_cards_best_fit_keeps_the_big_card_free() -> None:
    gpus = parse_inventory("24GiB,12GiB,8GiB")
    placements = plan([ModelDemand("a", need(7.0)), ModelDemand("b", need(11.0))], gpus)
    assert placements["a"].replicas[0].gpus == [2]
    assert placements["b"].replicas[0].gpus == [1]


def test_a_model_too_large_for_any_card_is_split() -> None:
    rig = parse_inventory("5x12GiB")
    placements = plan([ModelDemand("big-70b", need(40.0))], rig)
    replica = placements["big-70b"].replicas[0]
    assert len(replica.gpus) == 4
    assert abs(sum(replica.tensor_split) - 1.0) < 1e-3
    assert replica.env()["CUDA_VISIBLE_DEVICES"] == ",".join(str(g) for g in replica.gpus)


def test_reserved_gpus_are_not_used() -> None:
    rig = parse_inventory("5x12GiB")
    placements = plan([ModelDemand("m", need(5.0), replicas=3)], rig, reserved=frozenset({0, 1}))
    used = {g for r in placements["m"].replicas for g in r.gpus}
    assert used.isdisjoint({0, 1})


def test_explicit_gpus_and_tensor_split() -> None:
    rig = parse_inventory("3x12GiB")
    demand = ModelDemand("m", need(15.0), gpus=[1, 2], tensor_split=[0.5, 0.5])
    replica = plan([demand], rig)["m"].replicas[0]
    assert replica.gpus == [1, 2] and replica.tensor_split == [0.5, 0.5]


def test_impossible_config_says_what_does_not_fit_where_and_by_how_much() -> None:
    rig = parse_inventory("2x12GiB")
    with pytest.raises(PlacementError) as info:
        plan([ModelDemand("huge", need(30.0))], rig)
    message = str(info.value)
    assert "huge" in message and "30.00 GiB" in message
    assert "GPU 0" in message and "GPU 1" in message
    assert "short by 6.00 GiB" in message


def test_explicit_gpu_that_is_reserved_is_an_error() -> None:
    with pytest.raises(PlacementError, match=r"\[0\]"):
        plan([ModelDemand("m", need(1.0), gpus=[0])], parse_inventory("2x12GiB"), frozenset({0}))


def test_no_gpus_means_cpu() -> None:
    placements = plan([ModelDemand("m", need(1.0), replicas=2)], [])
    assert [r.gpus for r in placements["m"].replicas] == [[], []]
    assert placements["m"].replicas[0].env() == {}


def test_with_a_gpu_present_a_small_model_goes_on_it() -> None:
    gpus = [Gpu(0, "x", 12 * GIB, 12 * GIB)]
    placements = plan([ModelDemand("m", need(1.0))], gpus)
    assert placements["m"].replicas[0].gpus == [0]


def test_a_late_model_is_placed_in_what_the_others_left() -> None:
    from gateway.placement.plan import remaining

    rig = parse_inventory("2x12GiB")
    first = plan([ModelDemand("a", need(10.0)), ModelDemand("b", need(10.0))], rig)
    left = remaining(rig, list(first.values()))
    assert sorted(g.free_bytes // GIB for g in left) == [1, 1]
    late = plan([ModelDemand("c", need(2.5))], left)["c"].replicas[0]
    assert len(late.gpus) == 2  # about 2 GiB left on each card: it fits only split over both
    with pytest.raises(PlacementError, match="c"):
        plan([ModelDemand("c", need(4.5))], left)


def test_nvml_inventory_is_read_when_the_driver_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from gateway.config import decode_config
    from gateway.placement.gpus import discover

    fake = types.ModuleType("pynvml")
    memory = types.SimpleNamespace(total=12 * GIB, free=11 * GIB)
    fake.nvmlInit = lambda: None  # type: ignore[attr-defined]
    fake.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    fake.nvmlDeviceGetMemoryInfo = lambda h: memory  # type: ignore[attr-defined]
    fake.nvmlDeviceGetName = lambda h: b"NVIDIA GeForce RTX 3060"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    config = decode_config('[[gpus]]\nindex = 0\nmemory_gib = 8\n[[models]]\nid = "m"\nsource = { path = "x" }\n')
    declared_only = decode_config('[server]\ngpu_discovery = "declared"\n[[gpus]]\nindex = 0\n'
                                  'memory_gib = 8\n[[models]]\nid = "m"\nsource = { path = "x" }\n')
    assert discover(declared_only)[1] == "config"  # the drivers are not asked
    gpus, source = discover(config)
    assert source == "nvml" and [g.name for g in gpus] == ["NVIDIA GeForce RTX 3060"] * 2
    assert gpus[1].free_bytes == 11 * GIB

    def no_driver() -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    fake.nvmlInit = no_driver  # type: ignore[attr-defined]
    gpus, source = discover(config)  # no driver: the declared GPUs
    assert source == "config" and gpus[0].total_bytes == 8 * GIB


def test_plan_table_counts_a_user_split_once() -> None:
    from gateway.config import decode_config
    from gateway.placement.plan import GIB, Gpu, Placement, ReplicaPlacement
    from gateway.placement.planner import plan_table

    config = decode_config('[[models]]\nid = "m"\nsource = { path = "m.gguf" }\n'
                           'gpus = [0, 1]\ntensor_split = [3, 1]\n')
    need = 4 * GIB
    placements = {"m": Placement("m", [ReplicaPlacement([0, 1], [3.0, 1.0], need, -1)])}
    gpus = [Gpu(0, "a", 12 * GIB, 12 * GIB), Gpu(1, "b", 12 * GIB, 12 * GIB)]
    table = plan_table(config, placements, gpus)
    planned = {line.split()[0]: line.split()[-4] for line in table.splitlines()[-2:]}
    assert planned == {"0": "3.00", "1": "1.00"}  # GiB: 3/4 and 1/4 of the need, not 3x and 1x


def test_each_process_gpu_context_is_kept_free_besides_its_model() -> None:
    card = [Gpu(0, "12 GiB", 12 * GIB, 12 * GIB)]
    assert plan([ModelDemand("m", need(11.8))], card)  # fits without the context
    with pytest.raises(PlacementError, match="GPU context"):
        plan([ModelDemand("m", need(11.8))], card, context_bytes=GIB // 2)
    placed = plan([ModelDemand("m", need(4.0), replicas=2)], card, context_bytes=GIB // 2)
    replicas = placed["m"].replicas
    assert all(r.gpus == [0] for r in replicas)  # 2 x (4 + 0.5) fits 12
    assert replicas[0].bytes_per_gpu()[0] == int(4.0 * GIB) + 1 + GIB // 2
    with pytest.raises(PlacementError):  # 3 x 4.5 does not
        plan([ModelDemand("m", need(4.0), replicas=3)], card, context_bytes=GIB // 2)


def test_a_model_split_across_cards_pays_the_context_on_each() -> None:
    rig = parse_inventory("2x12GiB")
    placed = plan([ModelDemand("big", need(20.0))], rig, context_bytes=GIB)
    replica = placed["big"].replicas[0]
    assert replica.gpus == [0, 1]
    assert sum(replica.bytes_per_gpu().values()) <= 24 * GIB
    assert all(share > GIB for share in replica.bytes_per_gpu().values())
    with pytest.raises(PlacementError):  # 22.5 + 2 x 1 does not fit 24
        plan([ModelDemand("big", need(22.5))], rig, context_bytes=GIB)


def test_engines_on_amd_cards_are_pointed_at_them_the_hip_way() -> None:
    placed = plan([ModelDemand("m", need(4.0))], [Gpu(0, "RX 7900", 24 * GIB, 24 * GIB, "amd")])
    replica = placed["m"].replicas[0]
    assert replica.env("amd") == {"HIP_VISIBLE_DEVICES": "0", "GGML_VK_VISIBLE_DEVICES": "0"}
    assert replica.env() == {"CUDA_VISIBLE_DEVICES": "0"}


def test_only_models_awake_at_start_are_placed_and_plan_says_how_the_others_fit(
        tmp_path: Path) -> None:
    from gateway.config import decode_config, model_entry
    from gateway.placement.planner import plan_config, plan_table
    from tests.tiny_model import write_tiny_gguf

    tiny = write_tiny_gguf(tmp_path / "tiny.gguf")
    config = decode_config(
        "[server]\ngpu_context_mb = 64\ngpu_discovery = \"declared\"\n"
        "[[gpus]]\nindex = 0\nmemory_gib = 0.2\n"
        + model_entry("one", tiny, n_ctx=512, parallel=1)
        + model_entry("two", tiny, n_ctx=512, parallel=1, load_at_start=False)
        + model_entry("huge", tiny, n_ctx=65536, parallel=64, load_at_start=False))
    planner = plan_config(config)
    assert set(planner.placements) == {"one"}  # the others are placed when they wake
    assert planner.sleeping["two"] == "asleep until a request; fits once idle models sleep for it"
    assert planner.sleeping["huge"].startswith("does not fit even alone")
    table = plan_table(config, planner.placements, planner.gpus, planner.unknown, planner.sleeping)
    assert "sleeping" in table and "fits once idle models sleep" in table
    planner.release("one")  # asleep: its room is free
    assert planner.placements == {}
