"""The KV cache in other layouts (quantized K and V, one pool for all slots) on the embedded
Gemma model: everything that holds KV follows: a conversation spilled and restored continues
exactly as one that stayed, a shared system prompt is copied, and a conversation saved under one
cache type is never restored into another (it is recomputed, and counted)."""

from __future__ import annotations

import pytest

from gateway.engine.kv.session_key import named
from gateway.engine.llama_backend import LlamaModel
from gateway.engine.events import Failed, FailureKind, Finished, FinishReason, TextDelta
from tests.engine.driver import complete, make_engine, run, submit

LAYOUTS = [
    {"cache_type_k": "q8_0", "cache_type_v": "q8_0"},
    {"cache_type_k": "q4_0", "cache_type_v": "q4_0"},
    {"kv_unified": True},
    {"cache_type_k": "q8_0", "cache_type_v": "q8_0", "kv_unified": True},
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda d: "-".join(f"{v}" for v in d.values()))
def test_a_restored_conversation_continues_as_one_that_stayed(gemma: LlamaModel, chat,
                                                              layout: dict[str, object]) -> None:
    prompt_x = chat("Name three colours.")
    prompt_y = chat("Name three animals and describe each of them in some detail please.")

    def conversation(parallel: int) -> tuple[str, int, int, str]:
        engine = make_engine(gemma, parallel=parallel, **layout)
        first = complete(engine, prompt_x, max_tokens=12)
        complete(engine, prompt_y, max_tokens=12)  # with one slot, this spills X to RAM
        follow = chat("Name three colours.", first.text, "Now three more.")
        second = complete(engine, follow, max_tokens=16)
        return (second.text, second.finished.cached_tokens, engine.conversations.restored,
                engine.ctx.kv_note)

    stayed_text, stayed_cached, stayed_restored, note = conversation(parallel=2)
    restored_text, restored_cached, restored_count, _ = conversation(parallel=1)
    assert stayed_restored == 0 and restored_count == 1
    assert restored_cached == stayed_cached > len(prompt_x)
    assert restored_text == stayed_text
    assert f"K {layout.get('cache_type_k', 'f16')}" in note
    assert ("one pool" in note) == bool(layout.get("kv_unified"))


@pytest.mark.parametrize("layout", LAYOUTS[::2], ids=["q8_0", "unified"])
def test_a_shared_system_prompt_is_copied_in_any_layout(gemma: LlamaModel,
                                                        layout: dict[str, object]) -> None:
    system = gemma.tokenize(", ".join(str(i) for i in range(1, 120)) + ",", True)
    engine = make_engine(gemma, n_ctx=1024, parallel=2, **layout)
    complete(engine, system + gemma.tokenize(" 120, 121,", False), max_tokens=4,
             session=named("client-a", "chat-1"))
    prompt = system + gemma.tokenize(" 120, 121, 122,", False)
    second = complete(engine, prompt, max_tokens=4, session=named("client-a", "chat-2"))
    assert engine.conversations.shared_prefixes == 1
    assert second.finished.cached_tokens >= len(system)
    alone = complete(make_engine(gemma, n_ctx=1024, parallel=2, **layout), prompt, max_tokens=4)
    assert second.text == alone.text


def test_a_conversation_saved_under_another_cache_type_is_recomputed(gemma: LlamaModel, chat,
                                                                     tmp_path) -> None:
    disk = {"parallel": 1, "ram_mb": 0, "dir": str(tmp_path), "disk_mb": 256}
    saving = make_engine(gemma, **disk)
    first = complete(saving, chat("Name a colour."), max_tokens=6, session="conv")
    complete(saving, chat("Name a fruit."), max_tokens=2, session="other")  # the first spills
    assert len(list(tmp_path.rglob("*.kv"))) == 1
    follow = chat("Name a colour.", first.text, "Another?")
    quantized = make_engine(gemma, **disk, cache_type_k="q8_0", cache_type_v="q8_0")
    assert quantized.cache.other_kv_type == 1
    again = complete(quantized, follow, max_tokens=2, session="conv")
    assert again.finished.cached_tokens == 0 and quantized.conversations.restored == 0
    same = make_engine(gemma, **disk)  # the file is still there, for an engine of its type
    back = complete(same, follow, max_tokens=2, session="conv")
    assert back.finished.cached_tokens >= len(chat("Name a colour.")) and same.conversations.restored == 1


@pytest.mark.parametrize("kind", ["f16", "q8_0", "q4_0"])
def test_the_planner_s_kv_bytes_per_token_are_llama_cpp_s(gemma: LlamaModel, gemma_path,
                                                          kind: str) -> None:
    """What a conversation's KV takes in llama.cpp (its saved state, per token) is what the
    planner counts for the cache type (the state adds a small header)."""
    from gateway.placement.footprint import footprint

    engine = make_engine(gemma, n_ctx=1024, parallel=1, cache_type_k=kind, cache_type_v=kind)
    tokens = gemma.tokenize(" ".join(["word"] * 600), True)[:512]
    complete(engine, tokens, max_tokens=1)
    state = engine.ctx.sequence_state_size(0)
    planned = footprint(gemma_path, 1024, 1, 512, kind, kind).kv / 1024
    per_token = state / len(tokens)  # the drawn token is not decoded: the prompt only
    assert planned <= per_token <= planned * 1.05, (state, planned)


@pytest.mark.parametrize("layout", [LAYOUTS[0], LAYOUTS[2]], ids=["q8_0", "unified"])
def test_a_paused_prefill_resumes_from_its_kv_in_any_layout(gemma: LlamaModel, chat,
                                                            layout: dict[str, object]) -> None:
    """Preemption: a new conversation's prefill paused for an ongoing turn (its KV spilled and
    restored in the layout) comes back from what it had computed, and answers as it would have
    alone."""
    engine = make_engine(gemma, parallel=1, n_batch=64, n_ctx=1024, **layout)
    first = complete(engine, chat("Hello, who are you?"), max_tokens=6, session="chat")
    long_prompt = gemma.tokenize("lorem ipsum dolor sit amet " * 60, True)
    newcomer = submit(engine, long_prompt, max_tokens=3)
    engine.step()
    engine.step()  # two chunks of its prefill are done
    ongoing = submit(engine, chat("Hello, who are you?", first.text, "Tell me more."),
                     max_tokens=3, session="chat")
    run(engine)
    assert engine.stats.paused == 1
    assert newcomer.finished.cached_tokens >= 2 * 64 - 1
    alone = complete(make_engine(gemma, parallel=1, n_batch=64, n_ctx=1024, **layout),
                     long_prompt, max_tokens=3)
    assert newcomer.text == alone.text and ongoing.finished.completion_tokens == 3


def test_without_flash_attention_a_quantized_v_falls_back_to_f16_in_the_same_memory(
        gemma: LlamaModel, chat, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend without flash attention for the model (CUDA on old cards, some Vulkan drivers;
    not this CPU, so llama.cpp's refusal of a quantized V is stood in for): with `flash_attn =
    "auto"` the engine keeps V at f16, shortens the context so the KV takes the memory the
    placement gave the quantized cache, says so, and serves."""
    from gateway.engine.llama_backend.context import LlamaContext

    create = LlamaContext._create

    def no_flash_attention(self, params, kv):  # type: ignore[no-untyped-def]
        return None if kv.type_v != "f16" else create(self, params, kv)

    monkeypatch.setattr(LlamaContext, "_create", no_flash_attention)
    engine = make_engine(gemma, n_ctx=1024, parallel=2, cache_type_k="q8_0", cache_type_v="q8_0")
    assert engine.ctx.kv.type_v == "f16" and engine.ctx.kv.type_k == "q8_0"
    planned = 2 * 1024 * (34 / 32 + 34 / 32)  # values' bytes, K and V as wide
    assert 2 * engine.n_ctx_seq * (34 / 32 + 2) <= planned * 1.02
    assert engine.n_ctx_seq >= 2 * 1024 * 0.6 // 2 - 256  # no shorter than it must be
    assert "needs flash attention" in engine.ctx.kv_note and "instead of 2048" in engine.ctx.kv_note
    assert complete(engine, chat("Name a colour."), max_tokens=4).finished.completion_tokens == 4


# ---- one pool for all slots -----------------------------------------------------------------


def _held(engine) -> int:  # type: ignore[no-untyped-def]
    return engine.conversations.held_cells()


def test_in_one_pool_a_shared_prefix_is_counted_once(gemma: LlamaModel) -> None:
    """`n` = 4 on a 400-token prompt in a pool of 1024 (4 slots of 256): the three later answers
    share the first's prompt cells (llama.cpp copies no cells in one pool), so 400 + 4 x 60
    cells hold all four answers whole, though their conversations add up to 1840 tokens."""
    engine = make_engine(gemma, n_ctx=256, parallel=4, kv_unified=True, n_batch=64)
    prompt = gemma.tokenize("north south east west " * 120, True)[:400]
    first = submit(engine, prompt, max_tokens=60)
    while not any(isinstance(e, TextDelta) for e in first.events):
        assert engine.step()
    others = [submit(engine, prompt, max_tokens=60) for _ in range(3)]
    most_tokens = 0
    while engine.step():
        assert _held(engine) <= 1024
        most_tokens = max(most_tokens, sum(len(s.tokens) for s in engine.conversations.slots.slots))
    assert engine.conversations.shared_prefixes == 3 and most_tokens > 1024
    assert [o.finished.completion_tokens for o in [first, *others]] == [60] * 4
    assert all(o.finished.reason is FinishReason.LENGTH for o in others)
    assert len({o.text for o in [first, *others]}) == 1  # greedy: the copies are the same KV
    # the prompt once; each copy computes the prompt's last token itself; an answer's last
    # token is drawn, not decoded
    assert _held(engine) == (400 + 59) + 3 * (1 + 59)


def test_the_pool_s_cell_count_follows_cuts_and_copies() -> None:
    """The slot table's count of a pool's cells: a copy shares cells, a cut of the source
    keeps those the copy still holds, and what either writes afterwards is its own."""
    from gateway.engine.kv.slots import SlotTable

    table = SlotTable(3)
    a, b, c = table.slots
    table.fill(a, list(range(100)))
    table.share(a, b, 80)
    assert table.held_cells() == 100 and table.freed_by(b) == 0 and table.freed_by(a) == 20
    b.tokens += [7] * 10  # b's own
    table.cut(a, 50)  # a forgets 50..99; b still holds 50..79 of a's first cells
    assert table.held_cells() == 50 + 30 + 10
    a.tokens += [8] * 40  # new cells of a's, not those b shares
    assert table.held_cells() == 50 + 30 + 10 + 40
    table.share(b, c, 85)  # c: a's 0..79 and b's own 80..84
    assert table.held_cells() == 130 and table.freed_by(c) == 0
    table.fill(b, [])
    assert table.held_cells() == 50 + 30 + 5 + 40 and table.freed_by(c) == 35
    table.fill(a, [])
    assert table.held_cells() == 85 == table.freed_by(c)


def test_in_one_pool_a_conversation_grows_past_its_share_moving_idle_ones_out(
        gemma: LlamaModel) -> None:
    """Two slots of 256 tokens in one pool of 512: an idle conversation is moved out (saved) so a
    400-token one fits, and comes back afterwards from what was saved."""
    engine = make_engine(gemma, n_ctx=256, parallel=2, kv_unified=True)
    assert engine.n_ctx_seq == 512  # a conversation may take the whole pool
    small = gemma.tokenize("one two three four five six seven eight " * 20, True)[:200]
    complete(engine, small, max_tokens=4, session="small")
    big = gemma.tokenize("alpha beta gamma delta epsilon zeta eta theta " * 60, True)[:400]
    grown = complete(engine, big, max_tokens=8, session="big")
    assert grown.finished.completion_tokens == 8 and _held(engine) <= 512
    assert engine.conversations.spilled == 1  # the idle one made room
    back = complete(engine, small + gemma.tokenize(" nine", False), max_tokens=2, session="small")
    assert back.finished.cached_tokens >= len(small) and engine.conversations.restored == 1


def test_when_the_pool_is_full_turns_end_or_give_way_never_hang(gemma: LlamaModel) -> None:
    """Two running conversations that together outgrow the pool: every request ends (one may
    end at the pool's end, or give way with a retry), the pool is never overfilled."""
    engine = make_engine(gemma, n_ctx=256, parallel=2, kv_unified=True, n_batch=64)
    a = submit(engine, gemma.tokenize("red green blue " * 80, True)[:230], max_tokens=200)
    b = submit(engine, gemma.tokenize("cats dogs birds " * 80, True)[:230], max_tokens=200)
    steps = 0
    while engine.step():
        steps += 1
        assert _held(engine) <= 512 and steps < 2000
    ends = [o.events[-1] for o in (a, b)]
    assert all(isinstance(e, (Finished, Failed)) for e in ends)
    finished = [e for e in ends if isinstance(e, Finished)]
    assert finished and all(e.reason is FinishReason.LENGTH for e in finished)
    assert sum(e.prompt_tokens + e.completion_tokens for e in finished) <= 512 + 2
    for e in ends:
        if isinstance(e, Failed):
            assert e.kind is FailureKind.QUEUE_FULL and "pool is full" in e.message


def test_a_prompt_the_pool_cannot_hold_gives_way_instead_of_hanging(gemma: LlamaModel) -> None:
    """(The API refuses such a prompt before it reaches the engine.) The engine fills the pool
    with it, finds nothing more fits, and ends it with a retry-later failure."""
    engine = make_engine(gemma, n_ctx=256, parallel=2, kv_unified=True, n_batch=64)
    huge = submit(engine, gemma.tokenize("lorem ipsum dolor " * 300, True)[:600], max_tokens=4)
    steps = 0
    while engine.step():
        steps += 1
        assert steps < 100
    last = huge.events[-1]
    assert isinstance(last, Failed) and last.kind is FailureKind.QUEUE_FULL
    assert "pool is full" in last.message and _held(engine) == 0  # its KV freed


def test_in_a_full_pool_a_new_prompt_gives_way_to_a_running_answer(gemma: LlamaModel) -> None:
    """An answer streaming in a pool of 512 while a 330-token prompt arrives (the two cannot
    both be held): the prompt's chunks leave the answer a cell each step, and when the pool is
    full the new prompt (nothing answered yet) gives way: the answer runs to its end."""
    engine = make_engine(gemma, n_ctx=256, parallel=2, kv_unified=True, n_batch=64)
    answer = submit(engine, gemma.tokenize("red green blue " * 80, True)[:200], max_tokens=100)
    while not any(isinstance(e, TextDelta) for e in answer.events):
        assert engine.step()
    newcomer = submit(engine, gemma.tokenize("cats dogs birds " * 120, True)[:330], max_tokens=8)
    steps = 0
    while engine.step():
        steps += 1
        assert _held(engine) <= 512 and steps < 2000
    assert answer.finished.completion_tokens == 100
    last = newcomer.events[-1]
    assert isinstance(last, Failed) and last.kind is FailureKind.QUEUE_FULL
