"""Prompt lookup: a turn's next tokens guessed from its own conversation.

An answer that edits code, fills a hole or quotes a document repeats runs of tokens already in
its context. Where the last `n` tokens (the longest `n` from `n_max` down to `n_min` that occurs)
were seen before, the tokens that followed them then are proposed. No model is needed; the
model checks the proposal in its next step. Pure: the turn's tokens are passed in.
"""

from __future__ import annotations


class NgramLookup:
    """The n-grams of one turn's tokens, each mapped to where it last ended (so its continuation
    is found in O(1)), indexed as the turn's tokens grow."""

    def __init__(self, n_min: int = 2, n_max: int = 4) -> None:
        self.sizes = range(n_max, n_min - 1, -1)
        self._ends: dict[int, dict[tuple[int, ...], int]] = {}
        self._indexed = 0  # n-grams ending before this position are in the index
        self._tokens: list[int] = []
        self._forget()

    def _forget(self) -> None:
        self._ends = {n: {} for n in self.sizes}
        self._indexed = 0
        self._tokens = []

    def propose(self, tokens: list[int], limit: int) -> list[int]:
        """Up to `limit` tokens to follow `tokens` (the sequence so far, the token about to be
        fed last): what followed the latest earlier occurrence of its longest known tail."""
        if limit <= 0 or len(tokens) < 2:
            return []
        if len(tokens) < self._indexed or tokens[:1] != self._tokens[:1]:
            self._forget()  # another history: start again
        self._index(tokens, len(tokens) - 1)  # all but the tail itself
        for n in self.sizes:
            if len(tokens) <= n:
                continue
            end = self._ends[n].get(tuple(tokens[-n:]))
            if end is not None:
                return tokens[end + 1:end + 1 + limit]
        return []

    def _index(self, tokens: list[int], upto: int) -> None:
        for end in range(max(self._indexed, 0), upto):
            for n in self.sizes:
                if end + 1 >= n:
                    self._ends[n][tuple(tokens[end + 1 - n:end + 1])] = end
        self._indexed = max(self._indexed, upto)
        self._tokens = tokens
