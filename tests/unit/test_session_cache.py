"""The session cache: a hard RAM budget, LRU order, the disk tier, and the model identity tag."""

from __future__ import annotations

from pathlib import Path

from gateway.engine.kv.session_cache import SavedSession, SessionCache


def entry(key: str, size: int, model: str = "m1", tokens: list[int] | None = None) -> SavedSession:
    return SavedSession(key, model, tokens or [1, 2, 3], b"x" * size, 0.0)


def test_budget_is_never_exceeded_and_oldest_go_first() -> None:
    cache = SessionCache("m1", budget_bytes=250)
    for i in range(5):
        assert cache.put(entry(f"k{i}", 100))
        assert cache.bytes_used <= 250
    assert "k4" in cache and "k3" in cache and "k0" not in cache
    assert not cache.put(entry("huge", 251))  # larger than the whole budget: not kept
    assert cache.bytes_used <= 250


def test_take_removes_and_frees() -> None:
    cache = SessionCache("m1", budget_bytes=1000)
    cache.put(entry("a", 300))
    taken = cache.take("a")
    assert taken is not None and taken.state == b"x" * 300
    assert cache.bytes_used == 0 and cache.take("a") is None


def test_state_of_another_model_is_never_restored() -> None:
    cache = SessionCache("m1", budget_bytes=1000)
    cache.put(entry("a", 10, model="m2"))
    assert cache.take("a") is None


def test_evicted_entries_go_to_disk_within_its_budget(tmp_path: Path) -> None:
    cache = SessionCache("m1", budget_bytes=150, disk_dir=str(tmp_path), disk_budget_bytes=400)
    for i in range(6):
        cache.put(entry(f"k{i}", 100, tokens=[i]))
    assert cache.bytes_used <= 150
    on_disk = sum(p.stat().st_size for p in tmp_path.rglob("*.kv"))
    assert 0 < on_disk <= 400
    back = cache.take("k3")  # pushed out of RAM, still on disk
    assert back is not None and back.tokens == [3] and back.state == b"x" * 100
    assert cache.take("k0") is None  # the disk budget pushed the oldest out


def test_unkeyed_continuation_is_found_by_prefix() -> None:
    cache = SessionCache("m1", budget_bytes=1000)
    cache.put(entry("~1", 10, tokens=[5, 6, 7, 8]))
    cache.put(entry("k:named", 10, tokens=[5, 6, 7, 8]))
    assert cache.best_continuation([5, 6, 7, 8, 9]) == "~1"
    assert cache.best_continuation([9, 9]) is None


def test_what_counts_as_the_same_conversation() -> None:
    from gateway.engine.kv.slots import common_prefix, continues

    cached = list(range(100))
    follow_up = cached[:98] + [500, 501, 502]  # the reply re-tokenized at its end, a new question
    assert continues(cached, follow_up, common_prefix(cached, follow_up))
    regenerate = cached[:40]  # the same prompt again: all of it is cached
    assert continues(cached, regenerate, common_prefix(cached, regenerate))
    other = cached[:10] + [900] * 50  # shares only the template's opening
    assert not continues(cached, other, common_prefix(cached, other))
    short = list(range(12))  # a short cached exchange, a new prompt sharing its first tokens
    assert not continues(short, short[:9] + [7, 7, 7, 7, 7], 9)


def test_two_models_sharing_a_disk_dir_never_touch_each_others_entries(tmp_path: Path) -> None:
    a = SessionCache("model-a", budget_bytes=0, disk_dir=str(tmp_path), disk_budget_bytes=10_000)
    b = SessionCache("model-b", budget_bytes=0, disk_dir=str(tmp_path), disk_budget_bytes=10_000)
    assert a.put(entry("k:chat", 100, model="model-a", tokens=[1, 2]))
    assert "k:chat" not in b
    assert b.take("k:chat") is None  # B looking up the same key ...
    back = a.take("k:chat")  # ... left A's saved conversation alone
    assert back is not None and back.tokens == [1, 2]


def test_saved_files_are_private(tmp_path: Path) -> None:
    cache = SessionCache("m1", budget_bytes=0, disk_dir=str(tmp_path), disk_budget_bytes=10_000)
    cache.put(entry("k:secret", 50))
    files = list(tmp_path.rglob("*.kv"))
    assert files and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert all(d.stat().st_mode & 0o777 == 0o700 for d in {f.parent for f in files})


def test_an_unkeyed_conversation_on_disk_is_found_by_prefix_even_after_a_restart(
        tmp_path: Path) -> None:
    cache = SessionCache("m1", budget_bytes=0, disk_dir=str(tmp_path), disk_budget_bytes=10_000)
    assert cache.put(entry("~abc", 100, tokens=[5, 6, 7, 8]))
    assert cache.best_continuation([5, 6, 7, 8, 9]) == "~abc"
    again = SessionCache("m1", budget_bytes=0, disk_dir=str(tmp_path), disk_budget_bytes=10_000)
    assert again.best_continuation([5, 6, 7, 8, 9]) == "~abc"
    back = again.take("~abc")
    assert back is not None and back.state == b"x" * 100
    assert again.best_continuation([5, 6, 7, 8, 9]) is None


def test_no_ram_budget_still_saves_to_disk(tmp_path: Path) -> None:
    cache = SessionCache("m1", budget_bytes=0, disk_dir=str(tmp_path), disk_budget_bytes=10_000)
    assert cache.enabled
    assert cache.put(entry("k:a", 100)) and "k:a" in cache
    assert not SessionCache("m1", budget_bytes=0).enabled


def test_a_smaller_budget_pushes_the_oldest_out_to_disk(tmp_path: Path) -> None:
    cache = SessionCache("m1", budget_bytes=400, disk_dir=str(tmp_path), disk_budget_bytes=4000)
    for i in range(4):
        cache.put(entry(f"k{i}", 100))
    cache.resize(250)  # the gateway gave this engine a smaller share of the host's RAM
    assert cache.bytes_used <= 250 and cache.budget_bytes == 250
    in_ram, ram_bytes, on_disk, disk_bytes = cache.usage()
    assert (in_ram, ram_bytes) == (2, 200) and on_disk == 2 and disk_bytes > 200
    assert cache.take("k0") is not None  # from disk, not lost
    cache.resize(0)
    assert cache.usage()[:2] == (0, 0)


def test_persist_moves_everything_in_ram_to_disk_for_the_next_engine(tmp_path: Path) -> None:
    cache = SessionCache("m1", budget_bytes=1000, disk_dir=str(tmp_path), disk_budget_bytes=4000)
    for i in range(3):
        cache.put(entry(f"k{i}", 100, tokens=[i, i + 1]))
    assert cache.persistent and cache.persist() == 3
    assert cache.usage()[:2] == (0, 0)
    later = SessionCache("m1", budget_bytes=1000, disk_dir=str(tmp_path), disk_budget_bytes=4000)
    assert later.tokens_of("k2") == [2, 3]  # a new engine of the same model file finds them
    taken = later.take("k1")
    assert taken is not None and taken.state == b"x" * 100
    assert not SessionCache("m1", budget_bytes=1000).persistent  # no disk tier: nothing to do
