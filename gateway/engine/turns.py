"""The engine thread's records of a turn: waiting (`PendingTurn`) and running (`RunningTurn`),
and the commands other threads send it. Plain state, and what a drawn token does to a turn
(`take`: its text sent, its end found)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gateway.engine.llama_backend import LlamaModel, Sampler
from gateway.engine.answer.logprobs import token_logprobs
from gateway.engine.scheduler import Running
from gateway.engine.kv.session_key import SessionKey
from gateway.engine.kv.slots import Slot
from gateway.engine.speculation.drafts import ProposalRecord
from gateway.engine.speculation.ngram import NgramLookup
from gateway.engine.answer.text_stream import TextStream
from gateway.engine.answer.thinking_watch import ThinkingWatch
from gateway.engine.events import Finished, FinishReason, Sink, TextDelta, TokenLogprob
from gateway.engine.requests import GenerationRequest



# an ongoing turn's first token may take this many times as long as on an idle engine; past it, a
# step in flight is aborted (issue 11: p95 during a burst <= 2x the idle p50, at the client)
TTFT_TARGET = 2.0


@dataclass
class PendingTurn:
    request: GenerationRequest
    sink: Sink
    session: SessionKey | None  # the request's session key, when the client named its conversation
    arrived: float = 0.0
    started: float = 0.0  # when it got its slot
    ongoing: bool = False
    reported: int = -1  # the queue position last told to the client
    # a turn preempted mid-answer: its running state, to resume exactly where it stopped
    resume: RunningTurn | None = None
    resume_key: SessionKey | None = None  # the conversation its KV was saved under
    resume_tokens: list[int] | None = None  # the tokens that KV covers

    @property
    def request_id(self) -> str:
        return self.request.request_id

    @property
    def client(self) -> str:  # whose queue share it counts against
        return self.request.scope

    def drop(self) -> None:
        """It will not run (cancelled, expired, shut down): let go of what a preempted turn holds."""
        if self.resume is not None:
            self.resume.sampler.free()
            self.resume = None


@dataclass
class RunningTurn:
    pending: PendingTurn
    slot: Slot
    sampler: Sampler
    text: TextStream
    prompt_left: list[int]
    cached_tokens: int
    generated: int = 0
    next_token: int = -1
    sat_out: bool = False  # it was left out of the last step
    first_token_at: float = 0.0
    logprobs: list[TokenLogprob] = field(default_factory=list)  # drawn, not yet sent
    thinking: ThinkingWatch | None = None  # a thinking answer: its block, counted and budgeted
    forced: list[int] = field(default_factory=list)  # tokens written next instead of drawn
    # speculation: the tokens it feeds after `next_token` this step (proposed, to be checked),
    # the logits rows of what it fed, its lookup, and how its proposals fared
    draft: list[int] = field(default_factory=list)
    logits_rows: list[int] = field(default_factory=list)
    lookup: NgramLookup | None = None
    proposals: ProposalRecord = field(default_factory=ProposalRecord)

    @classmethod
    def begin(cls, pending: PendingTurn, slot: Slot, reused: int, model: LlamaModel
              ) -> RunningTurn:
        """A turn starting in `slot`, which holds the first `reused` tokens of its prompt."""
        request = pending.request
        return cls(pending=pending, slot=slot,
                   sampler=Sampler(request.sampling, model, request.grammar),
                   text=TextStream(request.stop, None if request.ignore_eos else request.hole),
                   prompt_left=request.prompt_tokens[reused:], cached_tokens=reused,
                   thinking=ThinkingWatch(request.thinking) if request.thinking is not None
                   else None)

    def written_token(self) -> int | None:
        """The next of the tokens that close a thinking block whose budget is spent, written in
        place of the model's draw (the sampler takes it as drawn: penalties see it); None: draw.
        Never under a grammar, which could refuse it."""
        if not self.forced and self.thinking is not None and self.sampler.grammar is None:
            self.forced = self.thinking.closing_due()
        if not self.forced:
            return None
        token = self.forced.pop(0)
        self.sampler.accept(token)
        return token

    @property
    def renders_special(self) -> bool:
        """Its control tokens are sent as text (a thinking format made of them: gpt-oss's)."""
        return self.thinking is not None and self.thinking.spec.render_special

    def finished(self, reason: FinishReason) -> Finished:
        return Finished(
            reason=reason,
            prompt_tokens=len(self.request.prompt_tokens),
            completion_tokens=self.generated,
            cached_tokens=self.cached_tokens,
            stopping_word=self.text.stopping_word if reason is FinishReason.STOP else "",
            ongoing=self.pending.ongoing,
            queue_wait_s=self.pending.started - self.pending.arrived,
            reasoning_tokens=self.thinking.tokens if self.thinking is not None else 0,
        )

    def take(self, token: int, model: LlamaModel, logits: Callable[[], np.ndarray], now: float,
             held: int, n_ctx: int) -> FinishReason | None:
        """A token drawn for it (from `logits`): its text sent on; why the turn ends with it, or
        None when the token is to be fed next. `held`: the tokens its KV holds before it."""
        request = self.request
        self.generated += 1
        if token in model.eog_set:
            self.emit(self.text.flush())
            return FinishReason.STOP
        if self.generated == 1:
            self.first_token_at = now
        if request.logprobs is not None:
            self.logprobs.append(token_logprobs(logits(), token, request.logprobs,
                                                model.token_bytes))
        piece = model.token_bytes(token, special=self.renders_special)
        if self.thinking is not None:
            self.thinking.push(piece.decode("utf-8", "ignore"))  # its markup is ASCII
        text = self.text.push(piece)
        self.emit(text)
        if self.text.stopped:
            return FinishReason.STOP
        if (self.generated >= request.max_tokens or held >= n_ctx
                or self.predict_time_up(now, text)):
            self.emit(self.text.flush())
            return FinishReason.STOP if self.text.stopped else FinishReason.LENGTH
        self.next_token = token
        return None

    def predict_time_up(self, now: float, text: str) -> bool:
        """Answering longer than its `max_predict_s`, and a line just ended (as llama.cpp's
        t_max_predict_ms: an editor gets whole lines)."""
        limit = self.request.max_predict_s
        return limit is not None and "\n" in text and now - self.first_token_at > limit

    def prompt_out_of_time(self, now: float) -> bool:
        """No first token past its `max_prompt_s`: it ends with none. Its prompt's KV computed
        so far stays in the slot, for the editor's next keystroke."""
        limit = self.request.max_prompt_s
        return limit is not None and self.generated == 0 and now - self.pending.arrived > limit

    def emit(self, text: str) -> None:
        """Send text drawn for it (with the logprobs of the tokens it came from)."""
        if text:
            self.pending.sink(TextDelta(text, self.take_logprobs()))

    def take_logprobs(self) -> list[TokenLogprob] | None:
        if not self.logprobs:
            return None
        taken, self.logprobs = self.logprobs, []
        return taken

    @property
    def request(self) -> GenerationRequest:
        return self.pending.request

    def view(self) -> Running:
        return Running(self.request.request_id, self.pending.ongoing,
                       prefilling=self.generated == 0, arrived=self.pending.arrived,
                       prompt_left=len(self.prompt_left), sat_out=self.sat_out)


@dataclass(frozen=True)
class InFlight:
    """The step being decoded, as an arriving ongoing turn sees it (it carries no ongoing prompt:
    such a step is never aborted)."""

    started: float
    predicted_s: float | None  # how long it should take (None: not learned yet)
    new_prompt: bool  # it carries a new conversation's prompt chunk
    ongoing_decoders: int = 0  # ongoing turns answering: they share the arriving turn's step
    abortable_for_ongoing: bool = True  # latency_first, and it gives no ongoing turn its first token
    tokens: int = 0
    shares: dict[str, int] = field(default_factory=dict)  # request id -> its tokens in the step

    def mostly_for(self, request_id: str) -> bool:
        """Whether most of the step is one request's (an abandoned one's work is wasted)."""
        return self.shares.get(request_id, 0) * 2 > self.tokens

    def keeps_waiting(self, now: float, own_step_s: float | None, idle_step_s: float | None
                      ) -> bool:
        """Whether finishing this step first would break an arriving ongoing turn's TTFT target:
        what is left of it plus the turn's own step (`own_step_s`, with the others answering)
        longer than `TTFT_TARGET` times the turn's step on an idle engine. Until the costs are
        learned: when it prefills a new conversation."""
        if self.predicted_s is None or own_step_s is None or idle_step_s is None:
            return self.new_prompt
        left = self.started + self.predicted_s - now
        return left + own_step_s > TTFT_TARGET * idle_step_s


@dataclass
class EngineStats:
    """What the engine did, counted (tests and benchmarks read it)."""

    prompt_tokens_computed: int = 0
    prompt_tokens_cached: int = 0
    tokens_generated: int = 0
    decode_calls: int = 0
    tokens_drafted: int = 0  # proposed ahead (speculation) and fed to be checked
    drafts_accepted: int = 0  # of those, the ones the model drew too (emitted)
    paused: int = 0  # preempted (prefilling or answering) to give an ongoing turn its slot
    resumed: int = 0  # preempted while answering, then resumed where it stopped
    aborted_steps: int = 0


@dataclass
class CancelTurn:
    request_id: str


@dataclass
class Stop:
    pass


@dataclass
class SetRamBudget:
    """The session cache's share of the host-RAM budget, from the gateway."""

    budget_bytes: int


Command = PendingTurn | CancelTurn | SetRamBudget | Stop
