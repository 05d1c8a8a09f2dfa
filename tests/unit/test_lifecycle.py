"""The state table: every move a replica makes is one it allows, and it refuses the others."""

from __future__ import annotations

import pytest

from gateway.fleet.lifecycle import ALLOWED, PHASE_MOVES, InvalidTransition, Phase, State, move, step


def test_the_moves_a_replica_makes_are_allowed() -> None:
    path = [State.LOADING, State.READY, State.RESTARTING, State.READY, State.FAILED, State.LOADING,
            State.RESTARTING, State.FAILED, State.UNLOADED, State.LOADING]
    state = path[0]
    for new in path[1:]:
        state = move(state, new)
    assert state is State.LOADING


@pytest.mark.parametrize(("current", "new"), [(State.UNLOADED, State.READY),
                                              (State.FAILED, State.READY),
                                              (State.UNLOADED, State.RESTARTING)])
def test_other_moves_are_refused(current: State, new: State) -> None:
    assert new not in ALLOWED[current]
    with pytest.raises(InvalidTransition):
        move(current, new)


def test_the_steps_a_model_takes_are_allowed() -> None:
    """Asleep, woken, started, put to sleep, woken again but no room (back to sleep), loaded by
    the admin while it stops, failed, retried, unloaded."""
    path = [Phase.SLEEPING, Phase.PREPARING, Phase.STARTED, Phase.STOPPING, Phase.SLEEPING,
            Phase.PREPARING, Phase.SLEEPING, Phase.PREPARING, Phase.STARTED, Phase.STOPPING,
            Phase.PREPARING, Phase.FAILED, Phase.PREPARING, Phase.STARTED, Phase.STOPPING,
            Phase.UNLOADED]
    phase = path[0]
    for new in path[1:]:
        phase = step(phase, new)
    assert phase is Phase.UNLOADED


@pytest.mark.parametrize(("current", "new"), [(Phase.SLEEPING, Phase.STARTED),
                                              (Phase.STARTED, Phase.SLEEPING),
                                              (Phase.STARTED, Phase.PREPARING),
                                              (Phase.UNLOADED, Phase.FAILED)])
def test_other_steps_are_refused(current: Phase, new: Phase) -> None:
    """A model never serves without preparing, never sleeps with its engines running."""
    assert new not in PHASE_MOVES[current]
    with pytest.raises(InvalidTransition):
        step(current, new)
