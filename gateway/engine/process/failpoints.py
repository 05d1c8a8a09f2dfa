"""Failpoints: faults an engine process injects into itself on request, to test what the gateway
does with them on any machine (as etcd's gofail and TiKV's fail-rs do).

`GATEWAY_FAILPOINTS` holds comma-separated `name=action` or `name@model=action` entries; the engine
process reads it once at start (`Failpoints.from_env`). Unset, there are none, and a failpoint costs a
dict lookup where it is placed outside the per-token loop, or nothing at all inside it (the caller
keeps the action it looked up once).

Names: `engine.decode` (before a `llama_decode`), `engine.load` (before the model loads).
Actions:
- `segfault`: the process kills itself with SIGSEGV;
- `segfault_with_extra_buffers`: the same, only while llama.cpp's extra CPU buffer types are on
  (what the AMX fault in a VM looks like; turning them off heals it);
- `exit`: the process exits with status 3;
- `error`: the decode fails (llama_decode's error path), the process lives;
- `slow` (`engine.load` only): the load takes about SLOW_LOAD_S, its progress reported as it goes
  (what a big model from a slow disk looks like to /health and the page).
"""

from __future__ import annotations

import os
import signal

ENV = "GATEWAY_FAILPOINTS"
NAMES = frozenset({"engine.decode", "engine.load"})
ACTIONS = frozenset({"segfault", "segfault_with_extra_buffers", "exit", "error", "slow"})
SLOW_LOAD_S = 6.0


class FailpointError(ValueError):
    """A `GATEWAY_FAILPOINTS` entry that names no failpoint or no action."""


class Failpoints:
    def __init__(self, actions: dict[str, str]) -> None:
        self._actions = actions

    @classmethod
    def parse(cls, text: str, model_id: str) -> Failpoints:
        actions: dict[str, str] = {}
        for entry in filter(None, (e.strip() for e in text.split(","))):
            name, eq, action = entry.partition("=")
            name, _, only_for = name.strip().partition("@")
            action = action.strip()
            if not eq or name not in NAMES or action not in ACTIONS:
                raise FailpointError(
                    f"{ENV}: `{entry}` is not `name[@model]=action` with name in "
                    f"{sorted(NAMES)} and action in {sorted(ACTIONS)}")
            if not only_for or only_for == model_id:
                actions[name] = action
        return cls(actions)

    @classmethod
    def from_env(cls, model_id: str) -> Failpoints:
        return cls.parse(os.environ.get(ENV, ""), model_id)

    def action(self, name: str) -> str | None:
        return self._actions.get(name)


def trigger(action: str | None, extra_buffers: bool) -> bool:
    """Carry out a process-level action. True when the caller must fail the operation itself
    (`error`); the process does not return from the others."""
    if action is None:
        return False
    if action == "segfault" or (action == "segfault_with_extra_buffers" and extra_buffers):
        os.kill(os.getpid(), signal.SIGSEGV)
    elif action == "exit":
        os._exit(3)
    return action == "error"
