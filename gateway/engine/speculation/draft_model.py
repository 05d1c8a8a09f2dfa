"""Proposals from a draft model: a smaller GGUF with the same vocabulary, in a context of its own
with a sequence per slot, guessing each answer's next tokens greedily.

Its KV follows the slots lazily: before it proposes for a slot it keeps the longest prefix of
what it holds that the slot's conversation still starts with and computes the rest (a new
conversation's prompt, a restored one, the tokens accepted since), so cuts, spills, restores and
shared prefixes need nothing from it. Runs on the engine thread.
"""

from __future__ import annotations

import time

from gateway.engine.kv.slots import common_prefix
from gateway.engine.llama_backend import LlamaContext, LlamaModel

SAMPLE_IDS = 64  # token ids compared between the two vocabularies, spread over them


def same_vocabulary(model: LlamaModel, draft: LlamaModel) -> str | None:
    """Why `draft` cannot propose for `model` (their vocabularies differ), or None."""
    if draft.n_vocab != model.n_vocab:
        return (f"the draft model's vocabulary has {draft.n_vocab} tokens, the model's "
                f"{model.n_vocab}: a draft model must share the model's vocabulary")
    step = max(1, model.n_vocab // SAMPLE_IDS)
    for token in range(0, model.n_vocab, step):
        if draft.token_bytes(token, special=True) != model.token_bytes(token, special=True):
            return (f"the draft model's token {token} is not the model's: a draft model must "
                    "share the model's vocabulary")
    return None


class DraftModel:
    def __init__(self, model: LlamaModel, n_ctx: int, slots: int, n_batch: int,
                 threads: int) -> None:
        self.ctx = LlamaContext(model, n_ctx, slots, n_batch, threads)
        self.held: list[list[int]] = [[] for _ in range(slots)]  # per slot: tokens its KV holds
        self.step_seconds = 0.0  # the last proposing step's time (one token per sequence)

    def propose(self, wanted: dict[int, tuple[list[int], int]]) -> dict[int, list[int]]:
        """Per slot: (its conversation so far, the token to be fed last; how many to propose)
        -> the tokens the draft model would draw next, greedily."""
        batch, ctx = self.ctx.batch, self.ctx
        pending = {}
        for seq, (tokens, _n) in wanted.items():
            keep = min(common_prefix(self.held[seq], tokens), len(tokens) - 1)
            if not ctx.forget(seq, keep):
                keep = 0
                ctx.forget(seq)
            del self.held[seq][keep:]
            pending[seq] = tokens[keep:-1]  # all but the last: caught up, a batch at a time
        while any(pending.values()):
            batch.clear()
            for seq, left in pending.items():
                chunk, pending[seq] = left[:batch.capacity - batch.size], left[batch.capacity
                                                                              - batch.size:]
                for token in chunk:
                    batch.add(token, len(self.held[seq]), seq, False)
                    self.held[seq].append(token)
            ctx.decode()
        batch.clear()
        rows = {}
        for seq, (tokens, _n) in wanted.items():  # each last token, with its logits row
            rows[seq] = batch.add(tokens[-1], len(self.held[seq]), seq, True)
            self.held[seq].append(tokens[-1])
        ctx.decode()
        proposals: dict[int, list[int]] = {seq: [] for seq in wanted}
        while rows:
            drawn = {seq: ctx.greedy(row) for seq, row in rows.items()}
            batch.clear()
            rows = {}
            for seq, token in drawn.items():
                proposals[seq].append(token)
                if len(proposals[seq]) < wanted[seq][1]:
                    rows[seq] = batch.add(token, len(self.held[seq]), seq, True)
                    self.held[seq].append(token)
            if rows:
                started = time.perf_counter()
                ctx.decode()
                self.step_seconds = time.perf_counter() - started
        return proposals

    def close(self) -> None:
        self.ctx.close()
