"""How long a `llama_decode` step takes, learned from the steps the engine ran.

A step costs a fixed part (graph, threads, a matrix-vector pass over the weights), a part per
batch token and a part per logits row (the vocabulary projection: for Gemma 3 270M, two thirds of
the weights). Fitted by least squares over the recent steps; pure, the clock is the caller's.
The engine uses it to decide whether a step in flight would keep an arriving ongoing turn waiting
longer than its own step will take (then the step is aborted and redone with the turn in it).

The time of a step whose every token has a logits row (answers, and the tokens proposed after
them) is also kept as a curve by size, timed at start: it is not a line (on this CPU llama.cpp
switches kernels at 4 tokens: 2 tokens cost 2x one, 16 cost 8.7x), and speculation decides how
many tokens to propose from it. The curve is not refreshed by the steps run: those kernels round
differently from the one-token ones (logits apart by up to 1.4 on Gemma 3 270M), so the shape
of a turn's steps can change a greedy answer, and a shape chosen from timings of a busy moment
would make the same greedy request answer differently from one time to the next.
"""

from __future__ import annotations

import bisect
from collections import deque

import numpy as np

WINDOW = 64  # recent steps the fit uses
MIN_STEPS = 8  # fewer than this: no prediction; and the fit is refreshed every this many steps


class StepCost:
    def __init__(self) -> None:
        self._steps: deque[tuple[int, int, float]] = deque(maxlen=WINDOW)
        self._coef: np.ndarray | None = None
        self._seen = 0
        self._curve: dict[int, float] = {}  # tokens (each with its logits row) -> seconds
        self._sizes: list[int] = []  # its sizes, in order

    def seed_curve(self, timed: dict[int, float]) -> None:
        self._curve.update(timed)
        self._sizes = sorted(self._curve)

    def record(self, tokens: int, outputs: int, seconds: float) -> None:
        self._steps.append((tokens, outputs, seconds))
        self._seen += 1
        if self._seen % MIN_STEPS == 0:
            self._fit()

    def _fit(self) -> None:
        rows = np.array([(1.0, t, o) for t, o, _ in self._steps])
        seconds = np.array([s for _, _, s in self._steps])
        coef, *_ = np.linalg.lstsq(rows, seconds, rcond=None)
        if np.all(np.isfinite(coef)):
            self._coef = np.maximum(coef, 0.0)  # a negative part is noise, not a saving

    def predict(self, tokens: int, outputs: int) -> float | None:
        """Seconds a step of `tokens` batch tokens and `outputs` logits rows should take; None
        until enough steps were seen."""
        if self._coef is None:
            return None
        fixed, per_token, per_output = self._coef
        return float(fixed + per_token * tokens + per_output * outputs)

    def rows_step(self, tokens: int) -> float | None:
        """Seconds a step of `tokens` tokens, each with its logits row, should take (between the
        sizes timed: along the line joining them; past the largest: at its time per token);
        None when nothing was timed."""
        sizes = self._sizes
        if not sizes:
            return None
        at = bisect.bisect_left(sizes, tokens)  # sizes[at] is the first >= tokens
        above = sizes[min(at, len(sizes) - 1)]
        below = sizes[at] if at < len(sizes) and sizes[at] == tokens else sizes[max(at - 1, 0)]
        if above == below:
            return self._curve[below] * (tokens / below if tokens > below else 1.0)
        t_below, t_above = self._curve[below], self._curve[above]
        return t_below + (t_above - t_below) * (tokens - below) / (above - below)
