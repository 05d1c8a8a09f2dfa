"""Routing among a model's replicas: a conversation sticks to the replica holding its KV cache;
a new one goes to the least loaded replica."""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol, TypeVar


class Replica(Protocol):
    @property
    def in_flight(self) -> int: ...


R = TypeVar("R", bound=Replica)


class Router:
    def __init__(self, remember: int = 100_000) -> None:
        self._sticky: OrderedDict[str, object] = OrderedDict()
        self._remember = remember

    def pick(self, ready: list[R], session_key: str | None) -> R:
        if session_key is not None:
            known = self._sticky.get(session_key)
            if known is not None and known in ready:
                self._sticky.move_to_end(session_key)
                return known  # type: ignore[return-value]
        chosen = min(ready, key=lambda r: r.in_flight)
        if session_key is not None:
            self._sticky[session_key] = chosen
            if len(self._sticky) > self._remember:
                self._sticky.popitem(last=False)
        return chosen
