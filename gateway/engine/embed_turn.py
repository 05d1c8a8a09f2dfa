"""An embeddings request, answered at once on the engine thread between two steps (one short
pass per batch of inputs), on the engine's second context."""

from __future__ import annotations

from gateway.engine.llama_backend import EmbeddingContext
from gateway.engine.turns import PendingTurn
from gateway.engine.events import Embedded, Failed, FailureKind


def answer_embeddings(embedder: EmbeddingContext | None, pending: PendingTurn) -> None:
    inputs = pending.request.embed_inputs or []
    try:
        if embedder is None:
            raise ValueError("this model does not serve embeddings")
        pending.sink(Embedded(embedder.embed(inputs), sum(len(i) for i in inputs)))
    except (RuntimeError, ValueError) as exc:
        pending.sink(Failed(str(exc), FailureKind.DECODE_FAILED))
