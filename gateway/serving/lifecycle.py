"""The states of a model and of each of its replicas (engine processes), and the moves between
them: written down once, checked on every move (as llama-swap checks its process states).

A replica moves itself; a model's state is read off its replicas (and its own load error), so it
needs no moves of its own:

    loading -> ready | restarting | failed | unloaded
    ready -> restarting | failed | unloaded (its process died, too often; unloaded by the admin)
    restarting -> restarting | ready | failed | unloaded
    failed -> loading | unloaded            (the admin's load tries again)
    unloaded -> loading
"""

from __future__ import annotations

import enum


class State(str, enum.Enum):
    LOADING = "loading"
    READY = "ready"
    RESTARTING = "restarting"
    FAILED = "failed"
    UNLOADED = "unloaded"


ALLOWED: dict[State, frozenset[State]] = {
    State.LOADING: frozenset({State.READY, State.RESTARTING, State.FAILED, State.UNLOADED}),
    State.READY: frozenset({State.RESTARTING, State.FAILED, State.UNLOADED}),
    State.RESTARTING: frozenset({State.RESTARTING, State.READY, State.FAILED, State.UNLOADED}),
    State.FAILED: frozenset({State.LOADING, State.UNLOADED}),
    State.UNLOADED: frozenset({State.LOADING}),
}


class InvalidTransition(RuntimeError):
    """A move the table does not allow: a bug in whoever tried it."""


def move(current: State, new: State) -> State:
    """`new`, if the table allows going there from `current`."""
    if new is not current and new not in ALLOWED[current]:
        raise InvalidTransition(f"{current.value} -> {new.value} is not allowed")
    return new
