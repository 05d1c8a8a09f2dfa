"""Sharing the host-RAM budget by demand (pure policy)."""

from __future__ import annotations

from gateway.fleet.ram_shares import EngineRam, shares

MB = 1 << 20


def test_a_busy_engine_gets_the_room_idle_ones_leave() -> None:
    total = 1000 * MB
    busy = EngineRam(cap=512 * MB * 4, used=250 * MB, granted=250 * MB)  # full: hungry
    idle = [EngineRam(cap=2048 * MB, used=10 * MB, granted=250 * MB) for _ in range(3)]
    out = shares(total, [busy, *idle])
    assert sum(out) <= total
    floor = total // 16
    assert out[1:] == [floor] * 3  # idle ones keep a floor (more than 1.25 x 10 MB)
    assert out[0] == total - 3 * floor  # the busy one takes the rest


def test_two_busy_engines_split_it_and_caps_hold() -> None:
    total = 1000 * MB
    a = EngineRam(cap=2000 * MB, used=700 * MB, granted=700 * MB)
    b = EngineRam(cap=2000 * MB, used=290 * MB, granted=300 * MB)
    assert shares(total, [a, b]) == [500 * MB, 500 * MB]
    small = EngineRam(cap=100 * MB, used=100 * MB, granted=100 * MB)
    out = shares(total, [a, small])
    assert out == [900 * MB, 100 * MB]  # the capped one leaves the rest to the other


def test_an_engine_keeps_what_it_uses_plus_a_margin_and_never_past_the_total() -> None:
    total = 800 * MB
    quiet = EngineRam(cap=4000 * MB, used=300 * MB, granted=600 * MB)
    hungry = EngineRam(cap=4000 * MB, used=200 * MB, granted=200 * MB)
    out = shares(total, [quiet, hungry])
    assert out[0] == 375 * MB and out[1] == 425 * MB
    assert shares(total, []) == []
    calm = [EngineRam(4000 * MB, 10 * MB, 400 * MB), EngineRam(4000 * MB, 0, 400 * MB)]
    assert shares(total, calm) == [400 * MB, 400 * MB]  # no one wants more: nothing moves
    for n in range(1, 7):
        engines = [EngineRam(4000 * MB, 999 * MB, 999 * MB) for _ in range(n)]
        assert sum(shares(total, engines)) <= total
