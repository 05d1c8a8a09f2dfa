"""The real engine on the embedded Gemma model, driven step by step."""

from __future__ import annotations


import pytest

from gateway.engine.kv.session_key import named
from gateway.engine.llama_backend import LlamaContext, LlamaModel, Sampler
from gateway.engine.events import Failed, FailureKind, Finished, FinishReason, Queued
from gateway.engine.requests import SamplingParams
from tests.engine.driver import complete, make_engine, run, submit


def test_second_turn_computes_only_its_new_tokens(gemma: LlamaModel, chat) -> None:
    engine = make_engine(gemma)
    first_prompt = chat("What is the tallest mountain?")
    first = complete(engine, first_prompt, max_tokens=20)
    assert first.finished.cached_tokens == 0
    computed_before = engine.stats.prompt_tokens_computed
    second_prompt = chat("What is the tallest mountain?", first.text, "And the deepest lake?")
    second = complete(engine, second_prompt, max_tokens=8)
    computed = engine.stats.prompt_tokens_computed - computed_before
    cached = second.finished.cached_tokens
    assert cached >= len(first_prompt)  # the whole first prompt, and most of the reply
    assert computed == len(second_prompt) - cached
    assert computed < len(second_prompt) - len(first_prompt) + 4


def test_session_key_keeps_conversation_even_when_prompt_differs(gemma: LlamaModel) -> None:
    engine = make_engine(gemma)
    a = gemma.tokenize("Alpha beta gamma delta epsilon zeta eta theta", True)
    complete(engine, a, session="conv-1")
    again = complete(engine, a + gemma.tokenize(" iota", False), session="conv-1")
    assert again.finished.cached_tokens == len(a)


def test_restored_conversation_continues_exactly_as_one_that_stayed(gemma: LlamaModel, chat) -> None:
    prompt_x = chat("Name three colours.")
    prompt_y = chat("Name three animals and describe each of them in some detail please.")

    def conversation(parallel: int) -> tuple[str, int, int]:
        engine = make_engine(gemma, parallel=parallel)
        first = complete(engine, prompt_x, max_tokens=12)
        complete(engine, prompt_y, max_tokens=12)  # with one slot, this spills X to RAM
        follow = chat("Name three colours.", first.text, "Now three more.")
        second = complete(engine, follow, max_tokens=24)
        return second.text, second.finished.cached_tokens, engine.conversations.restored

    stayed_text, stayed_cached, stayed_restored = conversation(parallel=2)
    restored_text, restored_cached, restored_count = conversation(parallel=1)
    assert stayed_restored == 0 and restored_count == 1
    assert restored_cached == stayed_cached > len(prompt_x)
    assert restored_text == stayed_text


def test_five_conversations_on_two_slots_all_hit_cache_within_budget(gemma: LlamaModel, chat) -> None:
    budget = 24 << 20
    engine = make_engine(gemma, parallel=2, ram_mb=budget / (1 << 20))
    questions = [f"Tell me fact number {i} about the moon." for i in range(5)]
    firsts = []
    for q in questions:
        firsts.append(complete(engine, chat(q), max_tokens=10))
        assert engine.cache.bytes_used <= budget
    for q, first in zip(questions, firsts):
        prompt = chat(q, first.text, "Why?")
        second = complete(engine, prompt, max_tokens=6)
        assert second.finished.cached_tokens >= len(chat(q)), q
        assert engine.cache.bytes_used <= budget
    assert engine.conversations.restored >= 3
    assert engine.conversations.spilled >= 3


def test_budget_is_a_hard_limit(gemma: LlamaModel, chat) -> None:
    engine = make_engine(gemma, parallel=1)
    sizes = []
    for i in range(3):
        complete(engine, chat(f"Question {i}: why is the sky blue?"), max_tokens=6)
        sizes.append(len(engine.ctx.save_sequence(0)))
    one = max(sizes)
    budget = one + one // 2  # room for one saved conversation, not two
    engine = make_engine(gemma, parallel=1, ram_mb=budget / (1 << 20))
    for i in range(4):
        complete(engine, chat(f"Question {i}: why is the sky blue?"), max_tokens=6)
        assert engine.cache.bytes_used <= budget
        assert len(engine.cache) <= 1
    # the oldest conversations were dropped, the newest spilled one is still there
    back = complete(engine, chat("Question 2: why is the sky blue?"), max_tokens=2)
    assert back.finished.cached_tokens > 0
    gone = complete(engine, chat("Question 0: why is the sky blue?"), max_tokens=2)
    assert gone.finished.cached_tokens == 0


def raw_greedy(model: LlamaModel, prompts: list[list[int]], n_tokens: int) -> list[str]:
    """The same prompts through a bare llama_decode loop (one batch for all prompts, then one token
    per sequence per step), detokenized: what the engine must reproduce exactly."""
    ctx = LlamaContext(model, 512, 4, 512, 2)
    samplers = [Sampler(SamplingParams(temperature=0.0), model) for _ in prompts]
    batch = ctx.batch
    batch.clear()
    rows = []
    for seq, prompt in enumerate(prompts):
        for pos, token in enumerate(prompt):
            index = batch.add(token, pos, seq, pos == len(prompt) - 1)
        rows.append(index)
    ctx.decode()
    out: list[list[int]] = [[] for _ in prompts]
    positions = [len(p) for p in prompts]
    for step in range(n_tokens):
        tokens = [samplers[s].sample(ctx, rows[s]) for s in range(len(prompts))]
        for s, token in enumerate(tokens):
            out[s].append(token)
        if step == n_tokens - 1:
            break
        batch.clear()
        rows = [batch.add(tokens[s], positions[s], s, True) for s in range(len(prompts))]
        positions = [p + 1 for p in positions]
        ctx.decode()
    ctx.close()
    for sampler in samplers:
        sampler.free()
    return [b"".join(model.token_bytes(t) for t in toks).decode("utf-8", "replace") for toks in out]


PROMPTS = ("The capital of France is", "Water boils at", "My favourite food is", "In 1492,")


@pytest.mark.parametrize("count", [1, 2, 4])
def test_batched_output_equals_the_bare_decode_loop(gemma: LlamaModel, count: int) -> None:
    prompts = [gemma.tokenize(p, True) for p in PROMPTS[:count]]
    engine = make_engine(gemma, parallel=4)
    outcomes = [submit(engine, p, max_tokens=24) for p in prompts]
    steps = run(engine)
    assert steps <= 24 + 1  # all sequences decoded together, one llama_decode per token
    assert [o.text for o in outcomes] == raw_greedy(gemma, prompts, 24)


def test_long_prompt_is_prefilled_in_chunks_between_decode_steps(gemma: LlamaModel) -> None:
    engine = make_engine(gemma, parallel=2, prefill_chunk=64, n_ctx=1024)
    running = submit(engine, gemma.tokenize("Once upon a time", True), max_tokens=40)
    engine.step()
    engine.step()
    produced = len(running.events)
    long_prompt = gemma.tokenize("lorem ipsum " * 150, True)
    submit(engine, long_prompt, max_tokens=4)
    chunks_needed = -(-len(long_prompt) // 64)
    for _ in range(chunks_needed):
        engine.step()
    # the running stream got a token on every step while the long prompt was prefilled
    assert len(running.events) - produced >= chunks_needed - 1
    run(engine)


def test_same_conversation_twice_at_once_waits_and_stays_consistent(gemma: LlamaModel) -> None:
    engine = make_engine(gemma, parallel=2)
    tokens = gemma.tokenize("A story about a fox", True)
    first = submit(engine, tokens, max_tokens=10, session="same")
    second = submit(engine, tokens, max_tokens=10, session="same")
    run(engine)
    assert first.finished.completion_tokens == 10
    assert second.finished.completion_tokens == 10
    assert second.finished.cached_tokens == len(tokens) - 1  # reused the first's prompt, intact
    assert first.text == second.text


def test_queued_request_is_told_its_position(gemma: LlamaModel) -> None:
    engine = make_engine(gemma, parallel=1)
    first = submit(engine, gemma.tokenize("one", True), max_tokens=4)
    second = submit(engine, gemma.tokenize("two", True), max_tokens=4)
    run(engine)
    assert first.events[0] == Queued(0)  # accepted and started at once
    assert [e for e in first.events if isinstance(e, Queued)] == [Queued(0)]
    assert second.events[0] == Queued(1)  # accepted, first in line
    assert Queued(0) in second.events  # then started
    assert second.finished.completion_tokens == 4


def test_cancel_frees_the_slot_at_once(gemma: LlamaModel) -> None:
    engine = make_engine(gemma, parallel=1)
    doomed = submit(engine, gemma.tokenize("long story", True), max_tokens=400)
    engine.step()
    engine.step()
    waiting = submit(engine, gemma.tokenize("short", True), max_tokens=3)
    engine.cancel("no-such-request")  # an unknown id changes nothing
    engine.step()
    assert engine.occupancy == (1, 1)
    engine.cancel(doomed.request_id)
    engine.step()
    assert engine.occupancy == (1, 0)  # the waiting request took the freed slot in the same step
    run(engine)
    assert doomed.finished.reason.value == "cancelled"
    assert waiting.finished.completion_tokens == 3


def test_new_prefill_is_paused_for_an_ongoing_turn_and_resumes_from_its_kv(gemma: LlamaModel,
                                                                            chat) -> None:
    engine = make_engine(gemma, parallel=1, n_batch=64, n_ctx=1024)
    first = complete(engine, chat("Hello, who are you?"), max_tokens=6, session="chat")
    long_prompt = gemma.tokenize("lorem ipsum dolor sit amet " * 60, True)
    newcomer = submit(engine, long_prompt, max_tokens=3)
    engine.step()
    engine.step()  # two chunks of its prefill are done
    follow = chat("Hello, who are you?", first.text, "Tell me more.")
    ongoing = submit(engine, follow, max_tokens=3, session="chat")
    engine.step()
    assert engine.stats.paused == 1
    while not (ongoing.events and isinstance(ongoing.events[-1], Finished)):
        assert engine.step()
    assert not any(isinstance(e, Finished) for e in newcomer.events)  # the ongoing turn went first
    assert ongoing.finished.cached_tokens > len(chat("Hello, who are you?"))  # from restored KV
    run(engine)
    # the paused conversation came back from what it had computed, not from zero
    assert newcomer.finished.cached_tokens >= 2 * 64 - 1
    assert newcomer.finished.completion_tokens == 3


def test_an_aborted_step_is_undone_and_redone_exactly(gemma: LlamaModel) -> None:
    prompt = gemma.tokenize("The quick brown fox jumps over the lazy dog. " * 20, True)
    reference_engine = make_engine(gemma, n_batch=64, n_ctx=1024)
    reference = complete(reference_engine, prompt, max_tokens=12)
    engine = make_engine(gemma, n_batch=64, n_ctx=1024)
    outcome = submit(engine, prompt, max_tokens=12)
    engine.step()
    engine.ctx.abort()  # as if an ongoing turn had just arrived
    engine.step()
    assert engine.stats.aborted_steps == 1
    run(engine)
    assert outcome.text == reference.text
    assert engine.stats.prompt_tokens_computed == reference_engine.stats.prompt_tokens_computed


@pytest.mark.parametrize("backend_honours_abort", [True, False])
def test_an_ongoing_turn_aborts_a_new_conversations_prefill_in_flight(
        gemma: LlamaModel, backend_honours_abort: bool) -> None:
    """On the CPU llama.cpp stops a decode when asked; CUDA's backend has no abort callback and
    finishes it (llama.cpp sets the callback only on backends that export
    `ggml_backend_set_abort_callback`, which only ggml-cpu does). Either way the results hold."""
    import threading
    import time

    engine = make_engine(gemma, n_ctx=2048, parallel=2)
    if not backend_honours_abort:
        engine.ctx.abort = lambda: None  # type: ignore[method-assign]  # as on CUDA: ignored
    # no race with the clock: the newcomer's first prefill step waits, inside `decode`, until the
    # ongoing turn was submitted, so that turn always arrives with the step in flight
    armed, in_step, submitted = threading.Event(), threading.Event(), threading.Event()
    real_decode = engine.ctx.decode

    def decode() -> None:
        flight = engine._in_flight
        if armed.is_set() and flight is not None and flight.new_prompt and not submitted.is_set():
            in_step.set()
            assert submitted.wait(30)
        real_decode()

    engine.ctx.decode = decode  # type: ignore[method-assign]
    engine.start()
    try:
        chat = gemma.tokenize("Hello there my friend", True)
        first = submit(engine, chat, max_tokens=3, session="chat")
        # a long prompt whose continuation is clear-cut: where an aborted prefill is redone in other
        # chunks, float rounding differs, and a prompt with near-tied next tokens could flip
        long_prompt = gemma.tokenize(", ".join(str(i) for i in range(1, 300)) + ",", True)
        deadline = time.monotonic() + 30
        while not first.events or not isinstance(first.events[-1], Finished):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        newcomer = submit(engine, long_prompt, max_tokens=3)
        armed.set()  # one of its ~20 prefill steps will wait
        assert in_step.wait(30)
        ongoing = submit(engine, chat + gemma.tokenize(" again", False), max_tokens=3, session="chat")
        submitted.set()
        while not (newcomer.events and isinstance(newcomer.events[-1], Finished)):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        engine.stop()
    assert (engine.stats.aborted_steps >= 1) is backend_honours_abort
    assert ongoing.finished.cached_tokens == len(chat)
    alone = complete(make_engine(gemma, n_ctx=2048, parallel=2), long_prompt, max_tokens=3)
    assert newcomer.text == alone.text


def test_a_grammar_holds_the_output_and_ends_it(gemma: LlamaModel) -> None:
    engine = make_engine(gemma)
    prompt = gemma.tokenize("Is the sea wet? Answer:", True)
    for seed in range(3):
        answer = complete(engine, prompt, max_tokens=16, grammar='root ::= " yes" | " no"',
                          ignore_eos=False, temperature=1.0, seed=seed)
        assert answer.text in (" yes", " no")
        assert answer.finished.reason is FinishReason.STOP


def test_a_grammar_with_no_way_forward_fails_only_its_own_sequence(gemma: LlamaModel) -> None:
    engine = make_engine(gemma)
    prompt = gemma.tokenize("Say a letter:", True)
    # with the end token suppressed, nothing may follow "a"
    stuck = submit(engine, prompt, max_tokens=8, grammar='root ::= "a"', ignore_eos=True)
    other = submit(engine, prompt, max_tokens=8)
    run(engine)
    assert stuck.text == "a" and isinstance(stuck.events[-1], Failed)
    assert other.finished.completion_tokens == 8


def test_a_burst_on_an_idle_engine_counts_only_what_truly_waits(gemma: LlamaModel) -> None:
    engine = make_engine(gemma, parallel=4, reserved_slots=1, max_queue=9)
    prompt = gemma.tokenize("Count with me:", True)
    burst = [submit(engine, prompt, max_tokens=2) for _ in range(14)]
    engine.step()  # all 14 offered in one go, before any has a slot
    refused = [o for o in burst if any(isinstance(e, Failed) for e in o.events)]
    # 4 run (the reserved slot is borrowed) + 9 wait; only the 14th is refused
    assert len(refused) == 1 and refused[0] is burst[-1]
    failed = refused[0].events[0]
    assert isinstance(failed, Failed) and failed.kind is FailureKind.QUEUE_FULL
    run(engine)
    assert all(o.finished.completion_tokens == 2 for o in burst[:13])


def test_with_no_ram_budget_conversations_spill_to_disk_and_come_back(gemma: LlamaModel, chat,
                                                                      tmp_path) -> None:
    engine = make_engine(gemma, parallel=1, ram_mb=0, dir=str(tmp_path), disk_mb=256)
    first = complete(engine, chat("Name a colour."), max_tokens=6)
    complete(engine, chat("Name a fruit."), max_tokens=6)  # takes the only slot: the first spills
    assert engine.conversations.spilled == 1 and list(tmp_path.rglob("*.kv"))
    back = complete(engine, chat("Name a colour.", first.text, "Another?"), max_tokens=4)
    assert back.finished.cached_tokens >= len(chat("Name a colour."))
    assert engine.conversations.restored == 1


def test_a_new_conversation_starts_from_a_system_prompt_another_holds(gemma: LlamaModel) -> None:
    # a system prompt whose continuation is clear-cut, so outputs can be compared token for token
    system = gemma.tokenize(", ".join(str(i) for i in range(1, 120)) + ",", True)
    engine = make_engine(gemma, n_ctx=1024, parallel=2)
    first = complete(engine, system + gemma.tokenize(" 120, 121,", False), max_tokens=4,
                     session=named("client-a", "chat-1"))
    computed = engine.stats.prompt_tokens_computed
    second_prompt = system + gemma.tokenize(" 120, 121, 122,", False)
    second = complete(engine, second_prompt, max_tokens=4, session=named("client-a", "chat-2"))
    assert engine.conversations.shared_prefixes == 1
    assert second.finished.cached_tokens >= len(system)  # copied, not recomputed
    assert engine.stats.prompt_tokens_computed - computed == len(second_prompt) - \
        second.finished.cached_tokens
    alone = complete(make_engine(gemma, n_ctx=1024, parallel=2), second_prompt, max_tokens=4)
    assert second.text == alone.text
    # the first conversation kept its own KV: its next turn reuses all of it
    again = complete(engine, system + gemma.tokenize(" 120, 121,", False) + [0], max_tokens=1,
                     session=named("client-a", "chat-1"))
    assert again.finished.cached_tokens >= len(system) + 4
    assert first.finished.completion_tokens == 4


def test_another_clients_system_prompt_is_never_shared(gemma: LlamaModel) -> None:
    system = gemma.tokenize(", ".join(str(i) for i in range(1, 120)) + ",", True)
    engine = make_engine(gemma, n_ctx=1024, parallel=2)
    complete(engine, system, max_tokens=2, session=named("client-a", "x"))
    theirs = complete(engine, system, max_tokens=2, session=named("client-b", "x"))
    assert theirs.finished.cached_tokens == 0 and engine.conversations.shared_prefixes == 0


def test_a_system_prompt_saved_in_ram_is_restored_and_cut(gemma: LlamaModel) -> None:
    system = gemma.tokenize(", ".join(str(i) for i in range(1, 120)) + ",", True)
    engine = make_engine(gemma, n_ctx=1024, parallel=1)  # one slot: the first must spill first
    complete(engine, system + gemma.tokenize(" 120,", False), max_tokens=3,
             session=named("client-a", "one"))
    second_prompt = system + gemma.tokenize(" 120, 121, 122,", False)
    second = complete(engine, second_prompt, max_tokens=4, session=named("client-a", "two"))
    assert engine.conversations.spilled == 1 and engine.conversations.shared_prefixes == 1
    assert second.finished.cached_tokens >= len(system)
    alone = complete(make_engine(gemma, n_ctx=1024, parallel=1), second_prompt, max_tokens=4)
    assert second.text == alone.text


def test_a_borrower_is_preempted_for_an_ongoing_turn_and_resumes_token_identical(
        gemma: LlamaModel) -> None:
    counting = gemma.tokenize(", ".join(str(i) for i in range(1, 60)) + ",", True)
    engine = make_engine(gemma, n_ctx=1024, parallel=2, reserved_slots=1)
    chat = complete(engine, gemma.tokenize("Hello there, my friend.", True), max_tokens=3,
                    session=named("c", "chat"))
    first = submit(engine, counting, max_tokens=24)
    borrower = submit(engine, counting + gemma.tokenize(" 60,", False), max_tokens=24)
    for _ in range(40):  # until both answer: the second holds the reserved slot
        if borrower.text:
            break
        engine.step()
    assert engine.occupancy == (2, 0) and borrower.text
    follow_up = gemma.tokenize("Hello there, my friend.", True) + [0]
    ongoing = submit(engine, follow_up, max_tokens=3, session=named("c", "chat"))
    engine.step()  # the ongoing turn gets the borrowed slot within one step
    assert engine.stats.paused == 1 and engine.occupancy == (2, 1)
    assert not any(isinstance(e, Finished) for e in borrower.events)
    run(engine)
    assert ongoing.finished.cached_tokens > 0 and engine.stats.resumed == 1
    alone = complete(make_engine(gemma, n_ctx=1024, parallel=2), counting + gemma.tokenize(
        " 60,", False), max_tokens=24)
    assert borrower.text == alone.text and borrower.finished.completion_tokens == 24
    assert first.finished.completion_tokens == 24 and chat.finished.completion_tokens == 3
