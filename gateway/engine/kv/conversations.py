"""Where each conversation's KV lives: in a slot of the context, or saved in the session cache.

Owns the slot table and the session cache and the llama.cpp calls that move KV between them
(save, restore, cut). Answers "is this conversation known?" (ongoing vs new) and "which slot does
this turn run in, and how much of its prompt is already there?". Runs on the engine thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.engine.llama_backend import LlamaContext
from gateway.engine.kv.session_cache import SavedSession, SessionCache
from gateway.engine.kv.session_key import SessionKey, client_of, unkeyed, unkeyed_prefix
from gateway.engine.kv.slots import Slot, SlotTable, common_prefix
from gateway.engine.requests import GenerationRequest


MIN_SHARED_PREFIX = 32  # tokens: below this, copying KV is not worth it


@dataclass
class SlotLease:
    """A turn's slot, the conversation it holds, and how much of the prompt is already there."""

    slot: Slot
    key: str
    reused: int  # prompt tokens whose KV is already in the slot


class ConversationStore:
    def __init__(self, ctx: LlamaContext, model_identity: str, parallel: int, cache: SessionCache,
                 clock: Callable[[], float]) -> None:
        self.ctx = ctx
        self.model_identity = model_identity
        self.slots = SlotTable(parallel)
        self.cache = cache
        self.clock = clock
        self.spilled = 0
        self.restored = 0
        self.restores_refused = 0
        self.shared_prefixes = 0  # conversations started from another's prefix
        self.written_back = 0  # idle conversations copied to the session cache ahead of a spill

    def known_prefix(self, key: SessionKey | None, prompt: list[int], scope: str = "") -> int | None:
        """How many of this turn's prompt tokens the engine holds for its conversation, resident
        or saved; None when the conversation is new (an unkeyed one is looked for only among its
        client's, `scope`)."""
        tokens: list[int] | None
        if key is not None:
            slot = self.slots.by_session(key)
            tokens = slot.tokens if slot is not None else self.cache.tokens_of(key)
        else:
            prefix = unkeyed_prefix(scope)
            slot = self.slots.best_continuation(prompt, prefix)
            if slot is not None:
                tokens = slot.tokens
            else:
                saved = self.cache.best_continuation(prompt, prefix)
                tokens = self.cache.tokens_of(saved) if saved is not None else None
        return None if tokens is None else common_prefix(tokens, prompt)

    def new_tokens_guess(self, request: GenerationRequest) -> int | None:
        """From another thread (the engine decides): how many prompt tokens this turn of an
        ongoing conversation brings; None for a new one. A wrong guess costs a redone step."""
        try:
            known = self.known_prefix(request.session_key, request.prompt_tokens, request.scope)
        except (RuntimeError, IndexError):  # the engine changed a table under us
            return None
        return None if known is None else len(request.prompt_tokens) - known

    def is_known(self, key: SessionKey | None, prompt: list[int], scope: str = "") -> bool:
        """Whether this turn continues a conversation whose KV is resident or saved."""
        return self.known_prefix(key, prompt, scope) is not None

    def is_busy(self, key: SessionKey | None) -> bool:
        slot = self.slots.by_session(key) if key is not None else None
        return slot is not None and slot.busy

    def room_for(self, cells: int) -> int:
        """One KV pool: free cells for `cells` more tokens, made by moving idle conversations out
        (least recently used first) until there are enough or none is left; how many are free."""
        pool = self.ctx.pool_cells or 0
        free = pool - self.slots.held_cells()
        for slot in sorted((s for s in self.slots.idle() if s.tokens), key=lambda s: s.last_used):
            if free >= cells:
                break
            self._spill(slot)
            free = pool - self.slots.held_cells()
        return free

    def held_cells(self) -> int:
        """KV cells the slots hold (in one pool, a prefix two conversations share counts once)."""
        return self.slots.held_cells()

    def freed_by(self, slot: Slot) -> int:
        return self.slots.freed_by(slot)

    def free_slots(self) -> int:
        return len(self.slots.idle())

    def worth_computing_ahead(self, key: SessionKey | None, prompt: list[int], scope: str) -> bool:
        """Whether a background prompt (a conversation's next turn, begun ahead) should run: a
        slot is free and the conversation does not hold all of it already (its next turn may
        have run first: running it then would cut that turn's KV back)."""
        return bool(self.free_slots()) and (self.known_prefix(key, prompt, scope) or 0) < len(prompt)

    def place(self, key: SessionKey | None, prompt: list[int], scope: str = "") -> SlotLease | None:
        """Give this turn a slot holding as much of its prompt as can be had; None: wait."""
        slot: Slot | None
        if key is not None:
            slot = self.slots.by_session(key)
            if slot is not None and slot.busy:
                return None  # the same conversation is mid-turn: this turn waits for it
            if slot is None:
                slot = self._claim(key, prompt)
        else:
            prefix = unkeyed_prefix(scope)
            slot = self.slots.best_continuation(prompt, prefix)
            if slot is not None:
                key = slot.session
            else:
                key = self.cache.best_continuation(prompt, prefix) or unkeyed(scope)
                slot = self._claim(key, prompt)
        if slot is None or key is None:
            return None
        keep = min(common_prefix(slot.tokens, prompt), len(prompt) - 1)
        if not self.ctx.forget(slot.seq_id, keep):
            keep = 0  # llama.cpp could not cut this sequence there: recompute it whole
            self.ctx.forget(slot.seq_id)
        self.slots.cut(slot, keep)
        if slot.written_back:  # the turn changes this KV: the copy would go stale
            self.cache.discard(key)
            slot.written_back = False
        slot.session = key
        slot.busy = True
        slot.last_used = self.clock()
        return SlotLease(slot, key, keep)

    def _claim(self, key: SessionKey, prompt: list[int]) -> Slot | None:
        """A slot for conversation `key`, spilling an idle one if needed and restoring `key`'s state;
        a conversation with nothing saved starts from the longest prefix of its prompt that
        another conversation of the same client holds (a shared system prompt), copied."""
        slot = self.slots.vacant()
        if slot is None:
            return None
        saved = self.cache.take(key)  # before spilling: the spill may need its room
        self._spill(slot)
        if saved is not None and self.ctx.pool_cells is not None:
            self.room_for(len(saved.tokens))  # one pool: its cells, from idle conversations
        if saved is not None:
            if self.ctx.restore_sequence(slot.seq_id, saved.state):
                self.slots.fill(slot, saved.tokens)
                self.restored += 1
            else:  # llama.cpp refused the state (its layout, its cache type): recomputed
                self.restores_refused += 1
                self.ctx.forget(slot.seq_id)
        else:
            self._share_prefix(slot, client_of(key), prompt)
        return slot

    def _share_prefix(self, slot: Slot, client: str, prompt: list[int]) -> None:
        """Give an empty slot the KV of the longest prefix of `prompt` that one of `client`'s
        conversations holds, resident (copied from its slot) or saved in RAM (restored), cut
        to what they share. The other conversation keeps its own. Worth it only past
        `MIN_SHARED_PREFIX` tokens."""
        best, best_shared = None, MIN_SHARED_PREFIX - 1
        for other in self.slots.slots:
            if other is slot or other.session is None or client_of(other.session) != client:
                continue
            shared = min(common_prefix(other.tokens, prompt), len(prompt) - 1)
            if shared > best_shared:
                best, best_shared = other, shared
        if best is not None:
            self.ctx.copy_sequence(best.seq_id, slot.seq_id)
        else:
            saved = self.cache.longest_prefix(prompt, client, MIN_SHARED_PREFIX)
            if saved is None:
                return
            best_shared = min(common_prefix(saved.tokens, prompt), len(prompt) - 1)
            if not self.ctx.restore_sequence(slot.seq_id, saved.state):
                self.ctx.forget(slot.seq_id)
                return
        if self.ctx.forget(slot.seq_id, best_shared):
            if best is not None and self.ctx.pool_cells is not None:
                self.slots.share(best, slot, best_shared)  # one pool: the same cells
            else:
                self.slots.fill(slot, prompt[:best_shared])
            self.shared_prefixes += 1
        else:  # llama.cpp could not cut it there: start empty
            self.ctx.forget(slot.seq_id)

    def write_back(self) -> bool:
        """Idle time: when every slot holds a conversation and the next new one would have to
        spill one (saving its KV while the newcomer waits: about 20 ms per 1,500 tokens here),
        save the least recently used idle one to the session cache now, if RAM holds it without
        pushing anything out. Its spill then only forgets it. False: nothing was saved."""
        idle = self.slots.idle()
        if any(not s.tokens or s.written_back for s in idle):
            return False  # a newcomer already has a slot to take at no cost
        candidates = [s for s in idle if s.session is not None]
        if not candidates:
            return False
        slot = min(candidates, key=lambda s: s.last_used)
        if not self.cache.has_room(self.ctx.sequence_state_size(slot.seq_id)):
            return False
        assert slot.session is not None
        state = self.ctx.save_sequence(slot.seq_id)
        entry = SavedSession(slot.session, self.model_identity, list(slot.tokens), state,
                             self.clock(), self.cache.kv_type)
        slot.written_back = self.cache.put(entry)
        self.written_back += slot.written_back
        return slot.written_back

    def _spill(self, slot: Slot) -> None:
        """Move an idle slot's conversation out to the session cache and empty the slot (a copy
        written back while idle is already there, unless the cache has pushed it out since: a
        smaller share of RAM, other spills)."""
        if slot.written_back and slot.session is not None and slot.session in self.cache:
            self.spilled += 1
        elif slot.tokens and slot.session is not None and self.cache.enabled:
            state = self.ctx.save_sequence(slot.seq_id)
            entry = SavedSession(slot.session, self.model_identity, list(slot.tokens), state,
                                 self.clock(), self.cache.kv_type)
            if self.cache.put(entry):
                self.spilled += 1
        self.ctx.forget(slot.seq_id)
        self.slots.fill(slot, [])
        slot.session = None
        slot.written_back = False

    def persist(self) -> int:
        """The engine is stopping (a model going to sleep, a restart): with a disk tier, every
        conversation a slot holds is saved, and all go to disk, so they come back afterwards
        instead of being recomputed. How many were written."""
        if not self.cache.persistent:
            return 0
        for slot in self.slots.slots:
            if slot.tokens and slot.session is not None and not slot.written_back:
                state = self.ctx.save_sequence(slot.seq_id)
                self.cache.put(SavedSession(slot.session, self.model_identity, list(slot.tokens),
                                            state, self.clock(), self.cache.kv_type))
        return self.cache.persist()

    def release(self, slot: Slot, evict_first: bool = False) -> None:
        """The turn in this slot is over (or paused); its KV stays for the next turn."""
        slot.busy = False
        slot.last_used = 0.0 if evict_first else self.clock()

    def discard(self, slot: Slot) -> None:
        """The slot's KV can't be trusted (a failed decode): drop it."""
        self.ctx.forget(slot.seq_id)
        if slot.written_back and slot.session is not None:
            self.cache.discard(slot.session)
        self.slots.fill(slot, [])
        slot.session = None
        slot.busy = False
        slot.written_back = False
