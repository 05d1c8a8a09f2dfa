"""The slot table: which conversation's KV each sequence slot of the context holds.

Pure bookkeeping (no llama.cpp, clock passed in). A slot's `tokens` are exactly the tokens whose KV
the slot holds, so the common prefix with a new prompt is what a returning turn can skip.

In one KV pool for all slots (`kv_unified`), a prefix copied to another slot is not copied:
llama.cpp marks the same cells as held by both sequences, and a cell is free again only when no
sequence holds it. The table follows that, so the pool's free cells are counted right: each
slot's KV is a run of cells it shares (`shared`: (block, from, to) position ranges of cells
first written by other slots) and then cells of its own (`block`, from the end of the shared
runs to its length). Every cut goes through `cut`, every copy through `share`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

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
    shared: list[tuple[int, int, int]] = field(default_factory=list)  # (block, from, to) cells
    block: int = 0  # the block its own cells are in, from the end of `shared` on

    @property
    def shared_end(self) -> int:
        return self.shared[-1][2] if self.shared else 0

    def cells(self) -> list[tuple[int, int, int]]:
        """Its KV as (block, from, to) ranges of cells."""
        own = [(self.block, self.shared_end, len(self.tokens))]
        return self.shared + own if len(self.tokens) > self.shared_end else list(self.shared)


class SlotTable:
    def __init__(self, n_slots: int) -> None:
        self._blocks = count(1)
        self.slots = [Slot(seq, block=next(self._blocks)) for seq in range(n_slots)]

    # ---- what each slot's KV is (one pool: which cells) ---------------------------------------

    def cut(self, slot: Slot, keep: int) -> None:
        """The slot keeps the KV of its first `keep` tokens (llama.cpp has cut it there). Cells
        of its own that another slot shares stay held by that one: the cells it writes from now
        on go in a new block, so they are not taken for those."""
        if keep >= len(slot.tokens):
            return
        if any(b == slot.block for other in self.slots if other is not slot
               for b, _, _ in other.shared):
            if keep > slot.shared_end:
                slot.shared.append((slot.block, slot.shared_end, keep))
            slot.block = next(self._blocks)
        slot.shared = [(b, lo, min(hi, keep)) for b, lo, hi in slot.shared if lo < keep]
        del slot.tokens[keep:]

    def fill(self, slot: Slot, tokens: list[int]) -> None:
        """The slot holds these tokens' KV in cells of its own (restored, or emptied with [])."""
        self.cut(slot, 0)
        slot.tokens = list(tokens)

    def share(self, source: Slot, target: Slot, n: int) -> None:
        """`target` holds the KV of `source`'s first `n` tokens in the same cells (one pool)."""
        self.fill(target, [])
        target.shared = [(b, lo, hi) for b, lo, hi in source.cells() if lo < n]
        if target.shared:
            b, lo, hi = target.shared[-1]
            target.shared[-1] = (b, lo, min(hi, n))
        target.tokens = list(source.tokens[:n])

    def held_cells(self, leaving: Slot | None = None) -> int:
        """Cells the slots hold (a shared one once); `leaving`: as if that slot held none."""
        ranges: dict[int, list[tuple[int, int]]] = {}
        for slot in self.slots:
            if slot is not leaving:
                for b, lo, hi in slot.cells():
                    ranges.setdefault(b, []).append((lo, hi))
        held = 0
        for spans in ranges.values():
            end = 0
            for lo, hi in sorted(spans):
                held += max(0, hi - max(lo, end))
                end = max(end, hi)
        return held

    def freed_by(self, slot: Slot) -> int:
        """Cells that would be free if this slot held none (those no other slot shares)."""
        return self.held_cells() - self.held_cells(leaving=slot)

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
