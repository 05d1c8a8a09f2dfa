"""Speculative decoding in the batching engine: tokens proposed by n-gram lookup in the answer's
own conversation, checked in the same batch as every other sequence. The answer must be the one
the model gives without speculation, token for token (greedy, and seeded sampling too: each
token is still the sampler's own draw from the model's logits at that point), in fewer steps
where the proposals are right. On the default model (Qwen2.5-Coder 0.5B Instruct), where an
edit repeats its prompt's code, and Gemma."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.engine.events import TextDelta
from gateway.engine.llama_backend import LlamaModel
from tests.code_edit import EDIT
from tests.engine.driver import complete, make_engine, run, submit

@pytest.fixture(scope="module")
def qwen(qwen_path: Path, extra_buffers: bool) -> Iterator[LlamaModel]:
    model = LlamaModel(qwen_path, extra_buffers=extra_buffers)
    yield model
    model.close()


def ask(model: LlamaModel, *turns: str) -> list[int]:
    """A ChatML conversation (Qwen's template), ending where the assistant answers."""
    text = "".join(f"<|im_start|>{'user' if i % 2 == 0 else 'assistant'}\n{t}<|im_end|>\n"
                   for i, t in enumerate(turns))
    return model.tokenize(text + "<|im_start|>assistant\n", False)


FORCED = {"n_min": 6, "n_max": 6}  # proposals fed whatever they cost: the checks are exercised


def test_greedy_with_speculation_is_the_answer_without_it_in_fewer_steps(qwen: LlamaModel) -> None:
    prompt = ask(qwen, EDIT)
    plain = make_engine(qwen, n_ctx=1024, parallel=1, kind="none")
    without = complete(plain, prompt, max_tokens=80, ignore_eos=False)
    fast = make_engine(qwen, n_ctx=1024, parallel=1, **FORCED)
    with_spec = complete(fast, prompt, max_tokens=80, ignore_eos=False)
    assert "order_total" in without.text and plain.stats.tokens_drafted == 0
    assert with_spec.text == without.text
    assert with_spec.finished.completion_tokens == without.finished.completion_tokens
    assert fast.stats.drafts_accepted >= without.finished.completion_tokens // 3
    assert fast.stats.decode_calls < plain.stats.decode_calls * 0.6


def test_seeded_sampling_draws_the_same_answer_with_speculation(qwen: LlamaModel) -> None:
    """Sampling is sensitive to the logits' last bits where a draw lands near a boundary, so
    the steps stay under 4 tokens, computed by the same kernels as one token (see the draft
    model's test below)."""
    prompt = ask(qwen, EDIT)
    answers = []
    for kind in ("none", "ngram"):
        engine = make_engine(qwen, n_ctx=1024, parallel=1, kind=kind, n_min=2, n_max=2)
        answers.append(complete(engine, prompt, max_tokens=60, ignore_eos=False,
                                temperature=0.8, top_p=0.95, seed=11).text)
        drafted = engine.stats.tokens_drafted
    assert answers[0] == answers[1] and drafted > 0


def test_a_batch_of_answers_is_unchanged_by_speculation(gemma: LlamaModel) -> None:
    """Three sequences decoding together, each with its own proposals (or none) in one batch.
    (Answers the model is sure of: see the draft model's test on near ties.)"""
    prompts = [gemma.tokenize("one two three four one two three four one two", True),
               gemma.tokenize("The cat sat on the mat. The cat sat on the", True),
               gemma.tokenize("red, green, blue, red, green, blue, red,", True)]
    texts = {}
    for kind in ("none", "ngram"):
        engine = make_engine(gemma, n_ctx=512, parallel=3, kind=kind, **FORCED)
        outs = [submit(engine, p, max_tokens=40) for p in prompts]
        run(engine)
        texts[kind] = [o.text for o in outs]
        stats = engine.stats
    assert texts["none"] == texts["ngram"]
    assert stats.drafts_accepted > 0


def test_a_stop_inside_accepted_tokens_ends_the_answer_and_the_next_turn_reuses_its_kv(
        qwen: LlamaModel) -> None:
    """The answer stops at a stop string met among accepted proposals; the KV keeps only what
    the answer was, so the next turn of the conversation reuses it and answers as it would
    without speculation."""
    first = ask(qwen, EDIT)
    results = []
    for kind in ("none", "ngram"):
        engine = make_engine(qwen, n_ctx=1024, parallel=1, kind=kind, **FORCED)
        a = complete(engine, first, max_tokens=80, ignore_eos=False, stop=["quantity"],
                     session="edit")
        follow = ask(qwen, EDIT, a.text, "Now also rename tax_rate to rate.")
        b = complete(engine, follow, max_tokens=40, ignore_eos=False, session="edit")
        results.append((a.text, a.finished.reason, b.text, b.finished.cached_tokens))
    assert results[0] == results[1]
    assert results[0][0].endswith("item.price * item.")
    assert results[1][3] >= len(first)


def test_a_request_can_turn_speculation_off(qwen: LlamaModel) -> None:
    engine = make_engine(qwen, n_ctx=1024, parallel=1, **FORCED)
    complete(engine, ask(qwen, EDIT), max_tokens=30, ignore_eos=False, draft_max=0)
    assert engine.stats.tokens_drafted == 0


def test_an_ongoing_turn_s_first_token_comes_in_a_step_without_proposals(gemma: LlamaModel,
                                                                         chat) -> None:
    """Latency-first: while one answer speculates, a returning turn's prompt step carries no
    proposals (they would make that step, and its first token, slower)."""
    engine = make_engine(gemma, n_ctx=512, parallel=2, **FORCED)
    first = complete(engine, chat("Count: one two three one two three"), max_tokens=4,
                     session="back")
    streaming = submit(engine, gemma.tokenize("a b c d a b c d a b c d a b c", True),
                       max_tokens=200)
    while engine.stats.tokens_drafted == 0:
        assert engine.step()
    returning = submit(engine, chat("Count: one two three one two three", first.text, "More?"),
                       max_tokens=4, session="back")
    drafted = engine.stats.tokens_drafted
    engine.step()  # it is admitted and its new tokens computed: its first token
    assert any(isinstance(e, TextDelta) for e in returning.events)
    assert engine.stats.tokens_drafted == drafted
    run(engine)
    assert streaming.finished.completion_tokens == 200


# ---- a draft model ----------------------------------------------------------------------------


def test_a_draft_model_proposes_and_the_answer_stays_the_model_s(gemma: LlamaModel) -> None:
    """The model as its own draft (the one pair with a shared vocabulary offline): greedy, its
    proposals are the model's own next tokens and nearly all accepted; sampled (temperature 1,
    seeded), many are refused and cut; either way the answers are those without speculation,
    for two conversations taking turns in one slot (the draft's KV caught up each time) and a
    second turn of the first. Steps stay under 4 tokens here: from 4 on, this CPU's llama.cpp
    computes a batch with other kernels, whose last bits differ, and a near tie between the
    model's top two tokens could then go the other way (with or without speculation alike)."""
    prompts = [gemma.tokenize("The history of the printing press begins", True),
               gemma.tokenize("Photosynthesis is the process by which", True)]
    for sampling, least_accepted in (({}, 0.8), ({"temperature": 1.0, "seed": 5}, 0.0)):
        texts = {}
        for kind in ("none", "draft"):
            engine = make_engine(gemma, draft_model=gemma, n_ctx=512, parallel=1, kind=kind,
                                 n_min=2, n_max=2)
            outs = [complete(engine, p, max_tokens=32, session=f"s{i}", **sampling)
                    for i, p in enumerate(prompts)]
            again = complete(engine, prompts[0] + gemma.tokenize(outs[0].text + " And", False),
                             max_tokens=12, session="s0", **sampling)
            texts[kind] = [o.text for o in outs] + [again.text]
            stats = engine.stats
        assert texts["draft"] == texts["none"]
        assert stats.tokens_drafted > 0
        assert stats.drafts_accepted >= least_accepted * stats.tokens_drafted
        if not sampling:
            assert stats.decode_calls < (32 + 32 + 12) * 0.6


def test_a_draft_model_with_another_vocabulary_is_refused_saying_why(gemma: LlamaModel,
                                                                    tmp_path: Path) -> None:
    from tests.tiny_model import write_tiny_gguf

    tiny = LlamaModel(write_tiny_gguf(tmp_path / "tiny.gguf"))
    try:
        with pytest.raises(RuntimeError, match="vocabulary"):
            make_engine(gemma, draft_model=tiny, kind="draft")
    finally:
        tiny.close()


def test_in_one_pool_a_draft_model_proposes_only_within_its_own_context(gemma: LlamaModel
                                                                         ) -> None:
    """One pool lets a conversation grow past a slot's size; the draft model's context has a
    stream per slot, so past that it proposes nothing (before: its decode failed, and with it
    every request in the step)."""
    engine = make_engine(gemma, draft_model=gemma, n_ctx=256, parallel=2, kv_unified=True,
                         kind="draft", n_min=2, n_max=2, n_batch=64)
    long = complete(engine, gemma.tokenize("one two three four five " * 80, True)[:300],
                    max_tokens=8)
    assert long.finished.completion_tokens == 8
    short = complete(engine, gemma.tokenize("The history of the printing press", True),
                     max_tokens=8)
    assert short.finished.completion_tokens == 8 and engine.stats.tokens_drafted > 0
