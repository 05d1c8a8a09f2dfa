"""Which answering sequences feed proposed tokens in this step, and how many (speculation): their
n-gram lookups (or the draft model) propose, `speculation.drafts` decides how many pay. Runs on
the engine thread, between the scheduler's token counts and the batch; latency-first: a step that gives an ongoing
turn its prompt carries no proposals (they would delay its first token)."""

from __future__ import annotations

import logging

from gateway.engine.settings import SpeculationSettings
from gateway.engine.speculation.draft_model import DraftModel
from gateway.engine.speculation.drafts import Candidate, draft_lengths
from gateway.engine.speculation.ngram import NgramLookup
from gateway.engine.step_cost import StepCost
from gateway.engine.turns import RunningTurn

log = logging.getLogger(__name__)


def plan_drafts(running: list[RunningTurn], counts: dict[str, int], settings: SpeculationSettings,
                cost: StepCost, room: int, n_ctx: int, draft: DraftModel | None = None) -> None:
    """Set each running turn's `draft` for this step (most get none). `room`: batch tokens (and,
    in one KV pool, cells) left after `counts`; `draft`: the draft model, for kind "draft"."""
    for seq in running:
        seq.draft = []
    if settings.kind == "none" or room <= 0:
        return
    if any(s.prompt_left and s.pending.ongoing and counts.get(s.request.request_id)
           for s in running):
        return
    decoders = [s for s in running if not s.prompt_left and counts.get(s.request.request_id)]
    candidates: list[Candidate] = []
    by_key: dict[str, RunningTurn] = {}
    for seq in decoders:
        request = seq.request
        wanted = settings.n_max if request.draft_max is None else min(request.draft_max,
                                                                       settings.n_max)
        # never past the answer's end or the context's: room for the tokens and the next draw
        limit = min(wanted, request.max_tokens - seq.generated - 1,
                    n_ctx - len(seq.slot.tokens) - 2)
        if limit <= 0 or seq.forced:
            continue
        if draft is not None:  # its tokens are drawn once their number is known
            # within the draft's own context (a stream per slot, as long as the model's slot)
            limit = min(limit, draft.ctx.n_ctx_seq - len(seq.slot.tokens) - 2)
            if limit <= 0:
                continue
            proposal = [-1] * limit
        else:
            if seq.lookup is None:
                seq.lookup = NgramLookup(settings.ngram_min, settings.ngram_max)
            proposal = seq.lookup.propose(seq.slot.tokens, seq.next_token, limit)
        if proposal:
            key = seq.request.request_id
            candidates.append(Candidate(key, proposal, seq.proposals.rate,
                                        min(settings.n_min, limit)))
            by_key[key] = seq
    lengths = draft_lengths(candidates, len(decoders), sum(counts.values()), cost.rows_step, room,
                            draft.step_seconds if draft is not None else 0.0)
    if draft is not None:
        chosen = {by_key[k].slot.seq_id: ([*by_key[k].slot.tokens, by_key[k].next_token], n)
                  for k, n in lengths.items()}
        try:
            drawn = draft.propose(chosen) if chosen else {}
        except RuntimeError as exc:  # the draft model failed to decode: no proposals this step
            log.warning("the draft model could not propose: %s", exc)
            return
        for key in lengths:
            by_key[key].draft = drawn[by_key[key].slot.seq_id]
        return
    for c in candidates:
        if lengths.get(c.key):
            by_key[c.key].draft = c.proposal[:lengths[c.key]]
            by_key[c.key].proposals.watching = []  # what is fed is checked for real
        else:  # not worth feeding now: watched, so its record learns whether it would have been
            by_key[c.key].proposals.watch(c.proposal)
