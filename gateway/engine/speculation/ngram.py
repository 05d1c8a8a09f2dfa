"""Prompt lookup: a turn's next tokens guessed from its own conversation.

An answer that edits code, fills a hole or quotes a document repeats runs of tokens already in
its context. Where the last `n` tokens (the longest `n` from `n_max` down to `n_min` that occurs)
were seen before, the tokens that followed them then are proposed. No model is needed; the
model checks the proposal in its next step. Pure: the turn's tokens are passed in.
"""

from __future__ import annotations


class NgramLookup:
    """The n-grams of one turn's tokens, each mapped to where it last ended (so its continuation
    is found in O(1)), indexed as the turn's tokens grow (a turn's tokens only grow, or are cut
    back to where they were at its last step: what was indexed stays true)."""

    def __init__(self, n_min: int = 2, n_max: int = 4) -> None:
        self.sizes = range(n_max, n_min - 1, -1)
        self._ends: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in self.sizes}
        self._indexed = 0  # n-grams ending before this position are in the index

    def propose(self, tokens: list[int], last: int, limit: int) -> list[int]:
        """Up to `limit` tokens to follow `tokens` and then `last` (the token about to be fed):
        what followed the latest earlier occurrence of the longest known tail."""
        if limit <= 0 or not tokens:
            return []
        if len(tokens) < self._indexed:  # cut below what was indexed: another history
            self._ends = {n: {} for n in self.sizes}
            self._indexed = 0
        for end in range(self._indexed, len(tokens)):  # every n-gram ending in `tokens`
            for n in self.sizes:
                if end + 1 >= n:
                    self._ends[n][tuple(tokens[end + 1 - n:end + 1])] = end
        self._indexed = len(tokens)
        for n in self.sizes:
            if len(tokens) < n:
                continue
            seen = self._ends[n].get((*tokens[len(tokens) + 1 - n:], last))
            if seen is not None:
                follow = tokens[seen + 1:seen + 1 + limit]
                return follow if len(follow) == limit else (follow + [last])[:limit]
        return []
