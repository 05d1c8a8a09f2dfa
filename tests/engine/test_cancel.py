"""An abandoned request (its client hung up) stops at once: a step in flight that is mostly its
work is aborted, not finished, so the editor's next keystroke does not wait behind it."""

from __future__ import annotations

from gateway.engine.llama_backend import LlamaModel
from gateway.engine.events import Finished, FinishReason
from tests.engine.driver import make_engine, run, submit


def test_cancelling_aborts_a_step_that_is_mostly_the_cancelled_requests(gemma: LlamaModel) -> None:
    engine = make_engine(gemma, n_ctx=2048, parallel=2)
    prompt = gemma.tokenize(", ".join(str(i) for i in range(300)), True)  # several chunks
    abandoned = submit(engine, prompt, max_tokens=4)
    real_decode = engine.ctx.decode
    cancelled: list[bool] = []

    def decode() -> None:  # the client hangs up while the first prefill step runs
        if not cancelled:
            cancelled.append(True)
            engine.cancel(abandoned.request_id)
        real_decode()

    engine.ctx.decode = decode  # type: ignore[method-assign]
    run(engine)
    assert engine.stats.aborted_steps == 1  # the step was not finished for nobody
    assert engine.stats.prompt_tokens_computed == 0  # nothing of it counted as done
    last = abandoned.events[-1]
    assert isinstance(last, Finished) and last.reason is FinishReason.CANCELLED


def test_cancelling_a_small_part_of_a_step_lets_it_finish(gemma: LlamaModel) -> None:
    engine = make_engine(gemma, n_ctx=2048, parallel=2)
    short = submit(engine, gemma.tokenize("Hello there", True), max_tokens=30)
    engine.step()  # its prompt; it answers from now on, one token a step
    long_prompt = gemma.tokenize(", ".join(str(i) for i in range(100)), True)
    other = submit(engine, long_prompt, max_tokens=2)
    real_decode = engine.ctx.decode
    cancelled: list[bool] = []

    def decode() -> None:  # the short answer (1 token of the step) is abandoned mid-step
        if not cancelled and engine._in_flight is not None and engine._in_flight.tokens > 1:
            cancelled.append(True)
            engine.cancel(short.request_id)
        real_decode()

    engine.ctx.decode = decode  # type: ignore[method-assign]
    run(engine)
    assert cancelled and engine.stats.aborted_steps == 0  # the other's prompt went on
    assert isinstance(other.events[-1], Finished) and other.events[-1].reason is FinishReason.LENGTH
