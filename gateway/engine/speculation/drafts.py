"""How many proposed tokens each answering sequence feeds in a step: as many as raise the batch's
expected tokens per second, and none when nothing does.

A proposed token is worth its chance of being accepted: a sequence whose proposals were
accepted at rate `a` gets its j-th accepted with about a**j (each needs the ones before it). It
costs what it adds to the step, read from the engine's timed step sizes (`StepCost.rows_step`):
on a memory-bound GPU a step of 16 tokens costs about one of 1, so proposals are nearly free; on
this 2-core CPU 2 tokens cost twice one, 16 cost 8.7x. Proposed tokens are ranked by their
chance (the likeliest first, over all sequences), and the step takes the prefix of that ranking
with the most expected tokens per second, if it beats none by `MARGIN`. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# a turn's acceptance before it has proposed: as if it had had PRIOR_ACCEPTED of PRIOR_DRAFTED
PRIOR_ACCEPTED, PRIOR_DRAFTED = 1.0, 2.0
# before any step was timed: a step's cost grows this much per token over one token's
UNTIMED_PER_TOKEN = 0.1
MARGIN = 1.05  # proposals must promise this much more tokens per second than none


@dataclass
class Candidate:
    key: str  # the request's id
    proposal: list[int]  # the tokens it could feed after its next one
    accepted: int  # of its proposed tokens so far, how many the model accepted
    drafted: int
    at_least: int = 0  # proposed tokens it feeds whatever they cost (`n_min`)

    @property
    def rate(self) -> float:
        return (self.accepted + PRIOR_ACCEPTED) / (self.drafted + PRIOR_DRAFTED)


def draft_lengths(candidates: list[Candidate], decoders: int, tokens: int,
                  step_seconds: Callable[[int], float | None], room: int) -> dict[str, int]:
    """Proposed tokens per candidate (request id -> how many of its proposal it feeds), given the
    step's `decoders` answering sequences (each emits one token anyway), its `tokens` without
    proposals, the time of a step by its tokens, and the batch's `room` left."""
    if not candidates or room <= 0 or decoders <= 0:
        return {}

    def cost(extra: int) -> float:
        seconds = step_seconds(tokens + extra)
        if seconds is None:
            return 1.0 + UNTIMED_PER_TOKEN * (tokens + extra - 1)
        return max(seconds, 1e-9)

    lengths = {c.key: min(c.at_least, len(c.proposal)) for c in candidates}
    extra = sum(lengths.values())
    expected = decoders + sum(c.rate ** (j + 1) for c in candidates for j in range(lengths[c.key]))
    ranked = sorted(((c.rate ** (j + 1), c.key) for c in candidates
                     for j in range(lengths[c.key], len(c.proposal))), reverse=True)
    best_rate, best_taken = expected / cost(extra) * (MARGIN if not extra else 1.0), 0
    for taken, (gain, _key) in enumerate(ranked[:max(0, room - extra)], start=1):
        expected += gain
        rate = expected / cost(extra + taken)
        if rate > best_rate:
            best_rate, best_taken = rate, taken
    for _gain, key in ranked[:best_taken]:
        lengths[key] += 1
    return {k: n for k, n in lengths.items() if n}
