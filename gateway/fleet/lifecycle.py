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

A model's own steps (`Phase`, moved only by its `ServedModel`, checked here too):

    sleeping | unloaded -> preparing | stopping
                                            (a request wakes it, the start or the admin loads it;
                                             an unload or the server's close stops it anyway)
    preparing -> started | failed | sleeping | stopping
                                            (its file, vocabulary and placement, then its engines;
                                             a wake finding no room goes back to sleep)
    started -> stopping                     (keep-alive, room for another, the admin's unload)
    failed -> preparing | stopping          (the admin's load tries again)
    stopping -> sleeping | unloaded | preparing | stopping
                                            (a load while it stops starts once it stopped; a
                                             second stop waits for the first)

Its `State` is read off the phase and, once started, off its replicas.
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


class Phase(str, enum.Enum):
    SLEEPING = "sleeping"
    UNLOADED = "unloaded"
    PREPARING = "preparing"  # its file, vocabulary and placement; no engines yet
    STARTED = "started"  # its replicas run (or start, or restart): their states say the rest
    FAILED = "failed"  # it could not load (no file, no room even alone): its own error
    STOPPING = "stopping"  # its engines stop (to sleep, or unloaded)


PHASE_MOVES: dict[Phase, frozenset[Phase]] = {
    Phase.SLEEPING: frozenset({Phase.PREPARING, Phase.STOPPING}),
    Phase.UNLOADED: frozenset({Phase.PREPARING, Phase.STOPPING}),
    Phase.PREPARING: frozenset({Phase.STARTED, Phase.FAILED, Phase.SLEEPING, Phase.STOPPING}),
    Phase.STARTED: frozenset({Phase.STOPPING}),
    Phase.FAILED: frozenset({Phase.PREPARING, Phase.STOPPING}),
    Phase.STOPPING: frozenset({Phase.SLEEPING, Phase.UNLOADED, Phase.PREPARING, Phase.STOPPING}),
}


def step(current: Phase, new: Phase) -> Phase:
    """`new`, if a model may go there from `current`."""
    if new is not current and new not in PHASE_MOVES[current]:
        raise InvalidTransition(f"model {current.value} -> {new.value} is not allowed")
    return new
