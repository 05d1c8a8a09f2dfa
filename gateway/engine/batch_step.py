"""One batch step's tokens: filling the llama.cpp batch from the scheduler's token counts (and the
tokens proposed by speculation), cutting them to a unified KV pool's free cells, and undoing a
step that was aborted. Runs on the engine thread; knows nothing of the scheduling policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.engine.kv.slots import Slot, SlotTable
from gateway.engine.llama_backend import LlamaContext, TokenBatch
from gateway.engine.turns import EngineStats, RunningTurn


@dataclass
class StepBatch:
    turns: list[RunningTurn] = field(default_factory=list)  # in the batch, in slot order
    before: dict[int, int] = field(default_factory=dict)  # slot -> tokens it held before the step
    from_prompt: set[int] = field(default_factory=set)  # slots feeding a prompt chunk
    tokens: int = 0
    outputs: int = 0  # logits rows: the sequences that sample after this step
    ongoing_prompt: bool = False  # it gives an ongoing turn its first token
    new_prompt: bool = False  # it carries a new conversation's prompt
    shares: dict[str, int] = field(default_factory=dict)  # request id -> its tokens in the step


def fill(batch: TokenBatch, running: list[RunningTurn], counts: dict[str, int],
         stats: EngineStats) -> StepBatch:
    """Put each running turn's share of this step (`counts`: request id -> tokens) in the batch:
    a prompt chunk, or the token it drew last and the tokens proposed after it (its `draft`),
    each with its logits row. Each turn not in `counts` sits out."""
    batch.clear()
    step = StepBatch()
    chosen: dict[int, tuple[RunningTurn, list[int]]] = {}
    for seq in running:
        seq.logits_rows = []
        count = counts.get(seq.request.request_id, 0)
        seq.sat_out = count == 0
        if count == 0:
            continue
        if not seq.prompt_left:
            chosen[seq.slot.seq_id] = (seq, [seq.next_token, *seq.draft])
            stats.tokens_drafted += len(seq.draft)
            continue
        chunk = seq.prompt_left[:count]
        seq.prompt_left = seq.prompt_left[len(chunk):]
        chosen[seq.slot.seq_id] = (seq, chunk)
        step.from_prompt.add(seq.slot.seq_id)
        if seq.generated == 0:
            step.ongoing_prompt |= seq.pending.ongoing
            step.new_prompt |= not seq.pending.ongoing
        stats.prompt_tokens_computed += len(chunk)
    # in slot order: llama.cpp then splits a batch of several sequences into the fewest
    # micro-batches (out of order, it can take one per sequence and run far slower)
    for slot_seq in sorted(chosen):
        seq, now = chosen[slot_seq]
        tokens = seq.slot.tokens
        step.before[slot_seq] = len(tokens)
        # a prompt's last token has its row; an answer's token and each proposed after it too
        rows_from = len(now) - 1 - (0 if seq.prompt_left or slot_seq in step.from_prompt
                                    else len(seq.draft))
        wants_logits = not seq.prompt_left
        for i, token in enumerate(now):
            row = wants_logits and i >= rows_from
            index = batch.add(token, len(tokens), slot_seq, row)
            tokens.append(token)
            if row:
                seq.logits_rows.append(index)
                step.outputs += 1
        step.turns.append(seq)
        step.shares[seq.request.request_id] = len(now)
    step.tokens = batch.size
    return step


def undo(step: StepBatch, ctx: LlamaContext, slots: SlotTable, stats: EngineStats) -> None:
    """An aborted step leaves each sequence as it was before it: its KV cut back, a prompt chunk
    to feed again, else the same next token fed again."""
    for seq in step.turns:
        start = step.before[seq.slot.seq_id]
        added = seq.slot.tokens[start:]
        ctx.forget(seq.slot.seq_id, start)
        slots.cut(seq.slot, start)
        if seq.slot.seq_id in step.from_prompt:
            seq.prompt_left = added + seq.prompt_left
            stats.prompt_tokens_computed -= len(added)
        else:
            stats.tokens_drafted -= len(seq.draft)
    stats.aborted_steps += 1


POOL_FULL = ("The model's KV pool is full: other conversations hold it all; retry shortly, or "
             "send a shorter prompt")


@dataclass
class PoolCut:
    """A step cut to a unified KV pool's free cells: answers first, one cell each (where none
    is left, a new conversation's prompt gives way first, its KV freed and its client told to
    retry; an answer that still finds none has reached the pool's end and ends, as at a
    context's end), then prompt chunks in order, cut short so each answer keeps a cell for its
    next token (one that finds none waits a step); when nothing fits at all, the newest
    prefilling turn gives way, so the others always move."""

    counts: dict[str, int]  # request id -> tokens it feeds this step
    full: list[RunningTurn] = field(default_factory=list)  # decoding with no cell left: they end
    starved: list[RunningTurn] = field(default_factory=list)  # give way so the others move
    spare: int = 0  # cells left free after the step (proposed tokens may take them)


def within_pool(counts: dict[str, int], running: list[RunningTurn], free: int,
                freed_by: Callable[[Slot], int]) -> PoolCut:
    cut = PoolCut({})
    chosen = [s for s in running if counts.get(s.request.request_id, 0) > 0]
    # a new conversation's prompt (nothing answered yet) gives way before any answer ends
    fresh = sorted((s for s in chosen if s.prompt_left and s.generated == 0),
                   key=lambda s: s.pending.arrived)
    for seq in (s for s in chosen if not s.prompt_left):
        if free < 1 and fresh:
            newest = fresh.pop()
            cut.starved.append(newest)
            free += freed_by(newest.slot)  # its KV is freed before the step
        if free >= 1:
            cut.counts[seq.request.request_id] = 1
            free -= 1
        else:
            cut.full.append(seq)
    # prompt chunks leave a cell for each answer's next token
    free -= sum(1 for s in running if not s.prompt_left and s not in cut.full)
    prefilling = [s for s in chosen if s.prompt_left and s not in cut.starved]
    for seq in prefilling:
        take = min(counts[seq.request.request_id], free)
        if take > 0:
            cut.counts[seq.request.request_id] = take
            free -= take
    if not cut.counts and not cut.full and not cut.starved and prefilling:
        newest = max(prefilling, key=lambda s: (s.generated == 0, s.pending.arrived))
        (cut.starved if newest.generated == 0 else cut.full).append(newest)
    cut.spare = max(0, free)
    return cut
