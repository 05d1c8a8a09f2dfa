"""How the host-RAM budget for saved conversations is shared among the engines that run: by
demand, max-min fair. Pure (numbers in, numbers out); `residency` applies it.

An engine that fills what it was granted (`HUNGRY` of it) or had to push a conversation out of
RAM since the last look wants more; one that does not is offered what it uses plus a margin; the rest is split equally among the engines that do fill theirs, each at most its
model's own cap (water-filling). A busy model so gets the room idle ones leave, two busy ones split
it, and an idle one that starts spilling again is hungry at the next look and gets its part back.
Nothing moves while no engine wants more. The shares never sum past the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

HUNGRY = 0.9  # of its grant in use: it wants more
MARGIN = 0.25  # an engine that is not hungry keeps this much room above what it uses


@dataclass(frozen=True)
class EngineRam:
    cap: int  # its model's `session_cache.ram_mb`
    used: int  # bytes its saved conversations hold now
    granted: int  # its share now
    pushed_out: bool = False  # it could not keep a conversation since the last look


def hungry(engine: EngineRam) -> bool:
    return engine.pushed_out or engine.used >= HUNGRY * engine.granted


def demand(engine: EngineRam, floor: int) -> int:
    if hungry(engine):
        return engine.cap
    return min(engine.cap, max(int(engine.used * (1 + MARGIN)), floor))


def shares(total: int, engines: list[EngineRam]) -> list[int]:
    """Each engine's share of `total`, in order: max-min fair by demand, capped. While no
    engine wants more, nothing moves (an idle engine keeps its room for its next spills)."""
    if not any(hungry(e) for e in engines):
        return [e.granted for e in engines]
    floor = total // (4 * len(engines))  # an idle engine keeps room for a few conversations
    wants = [demand(e, floor) for e in engines]
    out = [0] * len(engines)
    left, waiting = total, len(engines)
    for i in sorted(range(len(engines)), key=lambda i: wants[i]):
        out[i] = min(wants[i], left // waiting)
        left -= out[i]
        waiting -= 1
    return out
