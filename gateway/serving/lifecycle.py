"""The states of a model and of each of its replicas (engine processes), and the moves between
them: written down once, checked on every move (as llama-swap checks its process states).

A replica moves itself; a model's state is read off its replicas (and its own load error), so it
needs no moves of its own:

    loading -> ready | restarting | failed | unloaded
    ready -> restarting | failed | unloaded (its process died, too often; unloaded by the admin)
    restarting -> restarting | ready | failed | unloaded
    failed -> loading | unloaded            (the admin's load tries again)
    unloaded -> loading

A model has one state of its own, never a replica's: `sleeping`, its engines stopped after
`keep_alive_s` idle (or to make room on the GPUs for another, or never started: `load_at_start =
false`); the next request for it wakes it, where `unloaded` (the admin's) answers 503.
"""

from __future__ import annotations

import enum


class State(str, enum.Enum):
    LOADING = "loading"
    READY = "ready"
    RESTARTING = "restarting"
    FAILED = "failed"
    UNLOADED = "unloaded"
    SLEEPING = "sleeping"  # a model's only: its engines stopped until a request wakes it


ALLOWED: dict[State, frozenset[State]] = {
    State.LOADING: frozenset({State.READY, State.RESTARTING, State.FAILED, State.UNLOADED}),
    State.READY: frozenset({State.RESTARTING, State.FAILED, State.UNLOADED}),
    State.RESTARTING: frozenset({State.RESTARTING, State.READY, State.FAILED, State.UNLOADED}),
    State.FAILED: frozenset({State.LOADING, State.UNLOADED}),
    State.UNLOADED: frozenset({State.LOADING}),
    State.SLEEPING: frozenset(),  # never a replica's
}


class InvalidTransition(RuntimeError):
    """A move the table does not allow: a bug in whoever tried it."""


def move(current: State, new: State) -> State:
    """`new`, if the table allows going there from `current`."""
    if new is not current and new not in ALLOWED[current]:
        raise InvalidTransition(f"{current.value} -> {new.value} is not allowed")
    return new
