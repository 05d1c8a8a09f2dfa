"""Routing among a model's replicas: a conversation sticks to the replica holding its KV cache;
a new one goes to the least loaded replica.

A conversation is known by its session key when the client sends one. Without a key it is known
the way the engine knows it, by its tokens: the router remembers which replica computed which
prompt prefixes (hashed in blocks of `BLOCK` tokens), and a prompt whose remembered prefix covers
at least half of it goes back to that replica. A shorter match (a shared system prompt, say) is
not a conversation the engine would continue, so it does not outweigh the load.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol, TypeVar


class Replica(Protocol):
    @property
    def in_flight(self) -> int: ...


R = TypeVar("R", bound=Replica)

BLOCK = 16
MIN_SHARED_FRACTION = 0.5


def prefix_hashes(tokens: Sequence[int], scope: str = "") -> list[int]:
    """One hash per whole block of the prompt; hash i covers tokens[: (i + 1) * BLOCK] (and the
    client: one client's prefixes never route another's prompts)."""
    hashes = []
    running = hash(scope)
    for end in range(BLOCK, len(tokens) + 1, BLOCK):
        running = hash((running, tuple(tokens[end - BLOCK:end])))
        hashes.append(running)
    return hashes


class _Lru(OrderedDict[object, object]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, key: object, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.limit:
            self.popitem(last=False)


class Router:
    # 200k prefix blocks: the last ~3M prompt tokens routed, in about 30 MB
    def __init__(self, remember: int = 100_000, remember_prefixes: int = 200_000) -> None:
        self._sticky = _Lru(remember)
        self._prefixes = _Lru(remember_prefixes)

    def pick(self, ready: list[R], session_key: str | None, prompt: Sequence[int] = (),
             scope: str = "") -> R:
        hashes = prefix_hashes(prompt, scope)
        chosen = self._holder(ready, session_key, hashes, len(prompt))
        if chosen is None:
            chosen = min(ready, key=lambda r: r.in_flight)
        if session_key is not None:
            self._sticky.remember(session_key, chosen)
        for h in hashes:
            self._prefixes.remember(h, chosen)
        return chosen

    def _holder(self, ready: list[R], session_key: str | None, hashes: list[int],
                n_prompt: int) -> R | None:
        """The ready replica that holds this conversation's KV cache, if one does."""
        if session_key is not None:
            known = self._sticky.get(session_key)
            return known if known in ready else None  # type: ignore[return-value]
        for blocks in range(len(hashes), 0, -1):
            if blocks * BLOCK < MIN_SHARED_FRACTION * n_prompt:
                break
            known = self._prefixes.get(hashes[blocks - 1])
            if known is not None and known in ready:
                return known  # type: ignore[return-value]
        return None
