"""The tokens a step gives an answering turn: its next token drawn and, where it fed proposed
tokens after its last one (speculation), the draws that go on while each is the token it fed
there (that token's KV is then right). The KV of the first proposed token the model would not
draw, and of those after it, is cut. Each draw is the model's own (its sampler, from the logits
at that point), greedy or not; those logits are a batch's, which llama.cpp computes with other
kernels than one token's, so a near tie can go the other way (`step_cost` keeps the step shapes
repeatable). Runs on the engine thread, after the step's decode."""

from __future__ import annotations

from collections.abc import Callable

from gateway.engine.events import FinishReason
from gateway.engine.kv.slots import SlotTable
from gateway.engine.llama_backend import GrammarStuck, LlamaContext, LlamaModel
from gateway.engine.turns import EngineStats, RunningTurn

STUCK = "the response format allows no next token for this model"


def draw(seq: RunningTurn, ctx: LlamaContext, model: LlamaModel, slots: SlotTable,
         stats: EngineStats, clock: Callable[[], float], n_ctx: int) -> FinishReason | str | None:
    """Draw the step's tokens for `seq`: None, it goes on (its `next_token` set); a reason, it
    ends; `STUCK`, its grammar allows nothing (it fails)."""
    request = seq.request
    fed, draft = len(seq.slot.tokens), seq.draft
    for i, row in enumerate(seq.logits_rows):
        if request.ignore_eos or seq.generated < request.min_tokens:
            ctx.suppress_end(row)
        try:
            token = seq.written_token()  # the closing of a thinking block out of budget
            if token is None:
                token = seq.sampler.sample(ctx, row)
        except GrammarStuck:
            return STUCK
        stats.tokens_generated += 1
        held = fed - len(draft) + i  # the tokens whose KV is right before this one
        reason = seq.take(token, model, lambda: ctx.logits(row), clock(), held, n_ctx)
        same = i < len(draft) and token == draft[i]
        if not draft:
            seq.proposals.drawn(token)  # a proposal watched, if any
        if same and reason is None:
            stats.drafts_accepted += 1
            continue
        if draft:
            stats.drafts_accepted += same
            seq.proposals.fed(i + same, missed=i < len(draft) and not same)
        if held < fed:  # proposed tokens after this one: their KV is cut
            ctx.forget(seq.slot.seq_id, held)
            slots.cut(seq.slot, held)
        return reason
    return None
