"""The slot table: which conversation's KV each sequence slot of the context holds.

Pure bookkeeping (no llama.cpp, clock passed in). A slot's `tokens` are exactly the tokens whose KV
the slot holds, so the common prefix with a new prompt is what a returning turn can skip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.engine.kv.session_key import UNKEYED, SessionKey




def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def continues(cached: list[int], prompt: list[int], shared: int) -> bool:
    """Whether a prompt with no session key is the next turn of the conversation in `cached`.

    A returning turn repeats its whole conversation (the reply may be re-tokenized a little
    differently at its end, or trimmed by the client); a regenerated answer repeats its prompt,
    which is all cached; two unrelated requests share only an opening (a template, a system
    prompt). So the prompt must repeat most of what is cached, or be cached whole.
    """
    return shared > 0 and (shared * 5 >= len(cached) * 4 or shared == len(prompt))


def best_unkeyed(candidates: list[tuple[SessionKey, list[int]]], prompt: list[int],
                 prefix: str = UNKEYED) -> tuple[SessionKey | None, int]:
    """The unkeyed conversation among (key, tokens) whose key starts with `prefix` (one client's)
    that `prompt` continues furthest."""
    best, best_shared = None, 0
    for key, tokens in candidates:
        if not key.startswith(prefix):
            continue
        shared = common_prefix(tokens, prompt)
        if continues(tokens, prompt, shared) and shared > best_shared:
            best, best_shared = key, shared
    return best, best_shared


@dataclass
class Slot:
    seq_id: int  # its llama.cpp sequence
    tokens: list[int] = field(default_factory=list)
    session: SessionKey | None = None
    busy: bool = False
    last_used: float = 0.0
    written_back: bool = False  # the session cache holds a copy of exactly this KV


class SlotTable:
    def __init__(self, n_slots: int) -> None:
        self.slots = [Slot(seq) for seq in range(n_slots)]

    def by_session(self, session: SessionKey) -> Slot | None:
        return next((s for s in self.slots if s.session == session), None)

    def idle(self) -> list[Slot]:
        return [s for s in self.slots if not s.busy]

    def best_continuation(self, prompt: list[int], prefix: str = UNKEYED) -> Slot | None:
        """The idle, unkeyed slot whose conversation this prompt continues, if any."""
        idle = {s.session: s for s in self.idle() if s.session is not None and s.tokens}
        key, _ = best_unkeyed([(k, s.tokens) for k, s in idle.items()], prompt, prefix)
        return idle[key] if key is not None else None

    def vacant(self) -> Slot | None:
        """An idle slot to give a new conversation: an empty one first, then one whose KV is
        already saved elsewhere, else the least recently used."""
        idle = self.idle()
        empty = [s for s in idle if not s.tokens]
        if empty:
            return empty[0]
        return min(idle, key=lambda s: (not s.written_back, s.last_used)) if idle else None
