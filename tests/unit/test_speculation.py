"""The pure parts of speculation: n-gram lookup's proposals, how many proposed tokens a step
takes from the timed step sizes, and the step-size curve."""

from __future__ import annotations

import pytest

from gateway.engine.speculation.drafts import Candidate, ProposalRecord, draft_lengths
from gateway.engine.speculation.ngram import NgramLookup
from gateway.engine.step_cost import StepCost


def test_lookup_proposes_what_followed_the_latest_longest_match() -> None:
    lookup = NgramLookup(2, 4)
    history = [1, 2, 3, 4, 5, 9, 9, 2, 3, 7, 8, 0, 1, 2, 3]
    # tail 1,2,3 (and 0,1,2,3 nowhere else): its latest earlier occurrence is at the start
    assert lookup.propose(history[:-1], history[-1], 3) == [4, 5, 9]
    grown = history + [4, 5]
    assert lookup.propose(grown[:-1], grown[-1], 2) == [9, 9]  # 2,3,4,5 -> what came after it, indexed as it grew
    assert lookup.propose([5, 6, 7], 8, 4) == []  # another history: nothing seen before
    assert lookup.propose([1, 2, 1], 2, 0) == []


def test_a_proposal_may_run_into_the_token_about_to_be_fed() -> None:
    # 1,2 last seen at the very end: what follows it is the token being fed itself
    assert NgramLookup(2, 2).propose([1, 2, 1], 2, 3) == [1, 2]


def test_lookup_prefers_a_longer_tail() -> None:
    lookup = NgramLookup(2, 3)
    # 8,9 is followed by 1 at first, by 2 after 7,8,9: the tail 7,8,9 decides
    assert lookup.propose([7, 8, 9, 2, 0, 8, 9, 1, 5, 7, 8], 9, 1) == [2]


def test_a_memory_bound_step_takes_long_proposals_a_compute_bound_one_none() -> None:
    sure = Candidate("a", list(range(16)), rate=0.98)
    flat = draft_lengths([sure], 1, 1, lambda n: 0.020 + 0.0005 * n, room=64)
    assert flat == {"a": 16}
    linear = draft_lengths([sure], 1, 1, lambda n: 0.022 * n, room=64)
    assert linear == {}  # each proposed token costs a whole step: never worth it
    assert draft_lengths([sure], 1, 1, lambda n: 0.020 + 0.0005 * n, room=5) == {"a": 5}


def test_proposals_go_to_the_likeliest_and_a_kernel_switch_is_seen_past() -> None:
    """Time per step as on this CPU (2 tokens cost 2x one, 4 cost 3x, 16 cost 8.7x): one or two
    proposed tokens never pay, a long run that is nearly always accepted does."""
    times = {1: 0.0228, 2: 0.0443, 4: 0.0678, 8: 0.1173, 16: 0.1992}
    cost = StepCost()
    cost.seed_curve(times)
    copying = Candidate("copy", list(range(15)), rate=0.97)
    guessing = Candidate("guess", list(range(15)), rate=0.1)
    lengths = draft_lengths([copying, guessing], 2, 2, cost.rows_step, room=64)
    assert lengths.get("copy", 0) >= 10 and "guess" not in lengths
    unsure = Candidate("u", list(range(2)), rate=0.8)
    assert draft_lengths([unsure], 1, 1, cost.rows_step, room=64) == {}
    forced = Candidate("f", list(range(8)), rate=0.0, at_least=3)
    assert draft_lengths([forced], 1, 1, cost.rows_step, room=64) == {"f": 3}


def test_the_step_curve_interpolates_and_stays_as_timed() -> None:
    """Steps run do not move it: a greedy answer's step shapes (so its tokens) must not depend on
    how busy the machine was a moment ago."""
    cost = StepCost()
    assert cost.rows_step(4) is None
    cost.seed_curve({1: 0.02, 4: 0.05, 16: 0.2})
    assert cost.rows_step(2) == 0.03 and cost.rows_step(32) == 0.4 and cost.rows_step(1) == 0.02
    for _ in range(30):
        cost.record(4, 4, 0.1)  # steps of 4 answering tokens took longer for a while
        cost.record(8, 8, 0.01)
    assert cost.rows_step(4) == 0.05 and cost.rows_step(8) == pytest.approx(0.1)
    assert cost.predict(4, 4) is not None  # the abort rule's fit does learn from them


def test_a_record_learns_from_proposals_fed_and_watched() -> None:
    record = ProposalRecord()
    assert record.rate == 0.5
    record.fed(6, missed=True)  # 6 accepted, then one the model did not draw
    assert record.rate == 7 / 9
    record.watch([5, 6, 7])
    record.watch([9])  # one watched at a time
    for token in (5, 6, 8, 9):  # two right, then a miss ends the watch
        record.drawn(token)
    assert (record.accepted, record.missed, record.watching) == (8, 2, [])


def test_n_min_s_tokens_stay_within_the_batch_s_room() -> None:
    forced = [Candidate(k, list(range(8)), rate=0.9, at_least=4) for k in "abcd"]
    lengths = draft_lengths(forced, 4, 6, lambda n: 0.02, room=6)
    assert sum(lengths.values()) <= 6 and lengths["a"] == 4
