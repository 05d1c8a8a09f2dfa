"""Log-probabilities of drawn tokens, from a logits row: what `logprobs` reports. Pure numpy."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gateway.engine.events import TokenLogprob, TopLogprob

BANNED = -9999.0  # a token the sampler made impossible (its logit -inf): OpenAI's floor


def token_logprobs(logits: np.ndarray, token: int, top: int,
                   piece: Callable[[int], bytes]) -> TokenLogprob:
    """`token`'s log-probability under the row (a log-softmax over the whole vocabulary) and
    the `top` likeliest tokens', most likely first."""
    row = logits.astype(np.float64)
    finite = np.isfinite(row)
    peak = row[finite].max()
    log_total = peak + math.log(float(np.exp(row[finite] - peak).sum()))

    def logprob(t: int) -> float:
        return float(row[t] - log_total) if finite[t] else BANNED

    best: list[TopLogprob] = []
    if top > 0:
        picked = np.argpartition(-row, top)[:top]
        picked = picked[np.argsort(-row[picked], kind="stable")]
        best = [TopLogprob(piece(int(t)), logprob(int(t))) for t in picked]
    return TokenLogprob(piece(token), logprob(token), best)
