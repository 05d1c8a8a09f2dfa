"""The step cost model and the abort rule it feeds: pure, hand-fed figures."""

from __future__ import annotations

import pytest

from gateway.engine.step_cost import MIN_STEPS, StepCost
from gateway.engine.turns import InFlight


def test_the_cost_of_a_step_is_learned_from_the_steps_seen() -> None:
    cost = StepCost()
    shapes = [(1, 1), (8, 8), (128, 0), (135, 7), (40, 1), (3, 3), (64, 1), (200, 2)]
    for i, (tokens, outputs) in enumerate(shapes):
        assert cost.predict(10, 1) is None or i >= MIN_STEPS
        cost.record(tokens, outputs, 0.020 + 0.001 * tokens + 0.005 * outputs)
    assert cost.predict(16, 1) == pytest.approx(0.020 + 0.016 + 0.005, rel=1e-6)
    assert cost.predict(128, 7) == pytest.approx(0.020 + 0.128 + 0.035, rel=1e-6)


def test_an_ongoing_turn_aborts_only_a_step_that_would_break_its_ttft_target() -> None:
    """Target: twice its step on an idle engine (50 ms here); its own step with others answering
    takes 70 ms, so a step in flight may keep it waiting 30 ms, no more."""
    step = InFlight(started=10.0, predicted_s=0.200, new_prompt=True)
    assert step.keeps_waiting(now=10.01, own_step_s=0.070, idle_step_s=0.050)  # 190 ms left
    assert not step.keeps_waiting(now=10.18, own_step_s=0.070, idle_step_s=0.050)  # 20 ms left
    decode_only = InFlight(started=10.0, predicted_s=0.070, new_prompt=False, ongoing_decoders=1)
    assert decode_only.keeps_waiting(now=10.0, own_step_s=0.070, idle_step_s=0.050)
    assert not decode_only.keeps_waiting(now=10.045, own_step_s=0.070, idle_step_s=0.050)
    # not learned yet: a new conversation's prefill is aborted, a decode step is not
    assert InFlight(10.0, None, new_prompt=True).keeps_waiting(10.0, None, None)
    assert not InFlight(10.0, None, new_prompt=False).keeps_waiting(10.0, 0.05, None)
