"""The state table: every move a replica makes is one it allows, and it refuses the others."""

from __future__ import annotations

import pytest

from gateway.fleet.lifecycle import ALLOWED, InvalidTransition, State, move


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
