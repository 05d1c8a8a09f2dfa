"""Write-back: an idle engine whose slots are all taken saves one idle conversation ahead of its
spill, so a newcomer only forgets a slot; the saved copy comes back exactly, and never goes stale."""

from __future__ import annotations

import threading
import time

from gateway.engine.llama_backend import LlamaModel
from gateway.engine.events import EngineEvent, Finished
from gateway.engine.requests import GenerationRequest, SamplingParams
from tests.engine.driver import complete, make_engine


def counting_saves(engine) -> list[int]:  # type: ignore[no-untyped-def]
    calls: list[int] = []
    save = engine.ctx.save_sequence

    def counted(seq: int) -> bytes:
        calls.append(seq)
        return save(seq)

    engine.ctx.save_sequence = counted
    return calls


def test_a_newcomer_takes_a_written_back_slot_without_saving_and_the_copy_comes_back_exactly(
        gemma: LlamaModel, chat) -> None:
    def follow_up(parallel: int, write_back: bool) -> tuple[str, int]:
        engine = make_engine(gemma, parallel=parallel)
        first = complete(engine, chat("Name three colours."), max_tokens=12, session="a")
        complete(engine, chat("Name three rivers."), max_tokens=12, session="b")
        if write_back:
            assert engine.conversations.write_back()  # the least recently used: "a"
            assert "a" in engine.cache and "b" not in engine.cache
            assert not engine.conversations.write_back()  # one ready slot is enough
            saves = counting_saves(engine)
            complete(engine, chat("Name three trees."), max_tokens=4, session="c")
            assert saves == []  # the newcomer's spill saved nothing: the copy was there
            assert engine.conversations.spilled == 1
        again = complete(engine, chat("Name three colours.", first.text, "Three more."),
                         max_tokens=16, session="a")
        return again.text, again.finished.cached_tokens

    stayed_text, stayed_cached = follow_up(parallel=3, write_back=False)
    restored_text, restored_cached = follow_up(parallel=2, write_back=True)
    assert restored_cached == stayed_cached > 0
    assert restored_text == stayed_text


def test_nothing_is_written_back_while_a_slot_is_empty_or_ram_has_no_room(gemma: LlamaModel,
                                                                           chat) -> None:
    engine = make_engine(gemma, parallel=2)
    complete(engine, chat("Name three colours."), max_tokens=4, session="a")
    assert not engine.conversations.write_back()  # the other slot is empty: nothing to gain
    tight = make_engine(gemma, parallel=1, ram_mb=0.01)  # far less than one conversation
    complete(tight, chat("Name three colours."), max_tokens=4, session="a")
    assert not tight.conversations.write_back()
    assert len(tight.cache) == 0


def test_a_turn_in_a_written_back_slot_drops_the_copy_so_it_never_goes_stale(gemma: LlamaModel,
                                                                             chat) -> None:
    engine = make_engine(gemma, parallel=1)
    first = complete(engine, chat("Name three colours."), max_tokens=8, session="a")
    assert engine.conversations.write_back()
    follow = chat("Name three colours.", first.text, "Three more.")
    second = complete(engine, follow, max_tokens=8, session="a")  # in its slot, no restore
    assert second.finished.cached_tokens >= len(chat("Name three colours."))
    assert "a" not in engine.cache and engine.conversations.restored == 0
    saves = counting_saves(engine)
    complete(engine, chat("Name three rivers."), max_tokens=4, session="b")
    assert saves == [0]  # "a" had moved on since its copy: saved again, whole
    third = complete(engine, chat("Name three colours.", first.text, "Three more.", second.text,
                                  "And one more."), max_tokens=4, session="a")
    assert third.finished.cached_tokens >= len(follow)


def test_the_engine_thread_writes_back_once_it_is_idle(gemma: LlamaModel, chat) -> None:
    engine = make_engine(gemma, parallel=2)
    engine.start()
    try:
        done = threading.Semaphore(0)

        def sink(event: EngineEvent) -> None:
            if isinstance(event, Finished):
                done.release()

        for i, question in enumerate(["Name three colours.", "Name three rivers."]):
            request = GenerationRequest(f"w{i}", chat(question), 4, SamplingParams(temperature=0.0),
                                        session_key=f"s{i}", ignore_eos=True)
            engine.submit(request, sink)
            assert done.acquire(timeout=60)
        deadline = time.monotonic() + 10
        while engine.conversations.written_back == 0:
            assert time.monotonic() < deadline, "the idle engine wrote nothing back"
            time.sleep(0.01)
        assert "s0" in engine.cache
    finally:
        engine.stop()


def test_a_copy_the_cache_pushed_out_is_saved_again_at_the_spill(gemma: LlamaModel, chat) -> None:
    engine = make_engine(gemma, parallel=2)
    first = complete(engine, chat("Name three colours."), max_tokens=12, session="a")
    complete(engine, chat("Name three rivers."), max_tokens=12, session="b")
    assert engine.conversations.write_back() and "a" in engine.cache
    budget = engine.cache.budget_bytes
    engine.cache.resize(0)  # the gateway shrank this engine's share of RAM: the copy is gone
    engine.cache.resize(budget)
    assert "a" not in engine.cache
    saves = counting_saves(engine)
    complete(engine, chat("Name three trees."), max_tokens=4, session="c")
    assert saves != [] and "a" in engine.cache  # the spill saved it after all
    again = complete(engine, chat("Name three colours.", first.text, "Three more."),
                     max_tokens=8, session="a")
    assert again.finished.cached_tokens > 0  # restored, not recomputed
