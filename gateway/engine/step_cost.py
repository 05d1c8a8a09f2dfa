"""How long a `llama_decode` step takes, learned from the steps the engine ran.

A step costs a fixed part (graph, threads, a matrix-vector pass over the weights), a part per
batch token and a part per logits row (the vocabulary projection: for Gemma 3 270M, two thirds of
the weights). Fitted by least squares over the recent steps; pure, the clock is the caller's.
The engine uses it to decide whether a step in flight would keep an arriving ongoing turn waiting
longer than its own step will take (then the step is aborted and redone with the turn in it).
"""

from __future__ import annotations

from collections import deque

import numpy as np

WINDOW = 64  # recent steps the fit uses
MIN_STEPS = 8  # fewer than this: no prediction; and the fit is refreshed every this many steps


class StepCost:
    def __init__(self) -> None:
        self._steps: deque[tuple[int, int, float]] = deque(maxlen=WINDOW)
        self._coef: np.ndarray | None = None
        self._seen = 0

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
