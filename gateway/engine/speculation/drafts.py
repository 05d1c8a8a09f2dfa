"""How many proposed tokens each answering sequence feeds in a step: as many as raise the batch's
expected tokens per second, and none when nothing does.

A proposed token is worth its chance of being accepted: a sequence whose proposals were
accepted at rate `a` gets its j-th accepted with about a**j (each needs the ones before it).
The rate is learned from its proposals fed and, where none were (too dear), from proposals only
watched: compared with what the model then drew, at no cost; so a CPU that feeds none until
they pay still finds out when they would (a code edit copying its prompt). It
costs what it adds to the step, read from the engine's timed step sizes (`StepCost.rows_step`):
on a memory-bound GPU a step of 16 tokens costs about one of 1, so proposals are nearly free; on
this 2-core CPU 2 tokens cost twice one, 16 cost 8.7x. Proposed tokens are ranked by their
chance (the likeliest first, over all sequences), and the step takes the prefix of that ranking
with the most expected tokens per second, if it beats none by `MARGIN`. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# a turn's acceptance before any proposal was checked: as if PRIOR_ACCEPTED tokens had been
# accepted and PRIOR_MISSED proposals had ended at a token the model did not draw
PRIOR_ACCEPTED, PRIOR_MISSED = 1.0, 1.0
WATCHED = 16  # tokens of a proposal watched (not fed)
# before any step was timed: a step's cost grows this much per token over one token's
UNTIMED_PER_TOKEN = 0.1
MARGIN = 1.05  # proposals must promise this much more tokens per second than none


@dataclass
class ProposalRecord:
    """How one turn's proposals fared: tokens the model accepted (drew too), and proposals that
    ended at a token it did not draw; fed, or watched."""

    accepted: int = 0
    missed: int = 0
    watching: list[int] = field(default_factory=list)  # a proposal not fed, being compared

    @property
    def rate(self) -> float:
        """The chance that a proposed token is accepted, given the ones before it were."""
        return (self.accepted + PRIOR_ACCEPTED) / (self.accepted + self.missed
                                                   + PRIOR_ACCEPTED + PRIOR_MISSED)

    def fed(self, accepted: int, missed: bool) -> None:
        self.accepted += accepted
        self.missed += missed

    def watch(self, proposal: list[int]) -> None:
        """A proposal the step did not feed: compared with the next tokens drawn."""
        if not self.watching:
            self.watching = proposal[:WATCHED]

    def drawn(self, token: int) -> None:
        if self.watching:
            if self.watching.pop(0) == token:
                self.accepted += 1
            else:
                self.missed += 1
                self.watching = []


@dataclass
class Candidate:
    key: str  # the request's id
    proposal: list[int]  # the tokens it could feed after its next one
    rate: float  # its record's acceptance
    at_least: int = 0  # proposed tokens it feeds whatever they cost (`n_min`)


def draft_lengths(candidates: list[Candidate], decoders: int, tokens: int,
                  step_seconds: Callable[[int], float | None], room: int,
                  proposing_step_s: float = 0.0) -> dict[str, int]:
    """Proposed tokens per candidate (request id -> how many of its proposal it feeds), given the
    step's `decoders` answering sequences (each emits one token anyway), its `tokens` without
    proposals, the time of a step by its tokens, the batch's `room` left, and what making a
    proposal costs per token of the longest (a draft model's step; n-gram lookup: nothing)."""
    if not candidates or room <= 0 or decoders <= 0:
        return {}
    untimed = step_seconds(1) is None

    def cost(extra: int, longest: int) -> float:
        seconds = step_seconds(tokens + extra)
        if seconds is None:
            return 1.0 + UNTIMED_PER_TOKEN * (tokens + extra - 1)
        return max(seconds + (0.0 if untimed else proposing_step_s * longest), 1e-9)

    lengths = {}
    extra = 0
    for c in candidates:  # `n_min`'s tokens first, within the room
        lengths[c.key] = min(c.at_least, len(c.proposal), room - extra)
        extra += lengths[c.key]
    growing = dict(lengths)
    longest = max(growing.values())
    expected = decoders + sum(c.rate ** (j + 1) for c in candidates for j in range(lengths[c.key]))
    ranked = sorted(((c.rate ** (j + 1), c.key) for c in candidates
                     for j in range(lengths[c.key], len(c.proposal))), reverse=True)
    best_rate = expected / cost(extra, longest) * (MARGIN if not extra else 1.0)
    best_taken = 0
    for taken, (gain, key) in enumerate(ranked[:max(0, room - extra)], start=1):
        expected += gain
        growing[key] += 1
        longest = max(longest, growing[key])
        rate = expected / cost(extra + taken, longest)
        if rate > best_rate:
            best_rate, best_taken = rate, taken
    for _gain, key in ranked[:best_taken]:
        lengths[key] += 1
    return {k: n for k, n in lengths.items() if n}
