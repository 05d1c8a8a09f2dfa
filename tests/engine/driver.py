"""Drives an engine step by step in the test's own thread and records each request's events."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from gateway.engine.engine import Engine
from gateway.engine.llama_backend import LlamaModel
from gateway.engine.settings import SchedulerSettings
from gateway.engine.settings import (ContextSettings, EngineSettings, SessionCacheSettings,
                                     SpeculationSettings)
from gateway.engine.events import EngineEvent, Finished, TextDelta
from gateway.engine.requests import GenerationRequest, SamplingParams

_ids = itertools.count()


def make_engine(model: LlamaModel, draft_model: LlamaModel | None = None,
                **settings: object) -> Engine:
    """An engine with the settings a config gives (their defaults), but for those named: fields of
    the context, scheduling, session cache or speculation settings, each sent to the struct
    declaring it."""
    named = {"n_ctx": 512, "parallel": 2, "threads": 2, **settings}
    parts = {}
    for part, struct in (("context", ContextSettings), ("scheduling", SchedulerSettings),
                         ("session_cache", SessionCacheSettings),
                         ("speculation", SpeculationSettings)):
        parts[part] = struct(**{k: v for k, v in named.items() if k in struct.__struct_fields__})
    unknown = set(named) - {k for p in parts.values() for k in p.__struct_fields__}
    assert not unknown, unknown
    return Engine(model, EngineSettings(**parts), draft_model=draft_model)  # type: ignore[arg-type]


@dataclass
class Outcome:
    request_id: str
    events: list[EngineEvent] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))

    @property
    def finished(self) -> Finished:
        last = self.events[-1]
        assert isinstance(last, Finished), last
        return last


def submit(engine: Engine, tokens: list[int], max_tokens: int = 16, session: str | None = None,
           grammar: str | None = None, ignore_eos: bool = True, stop: list[str] | None = None,
           draft_max: int | None = None, **sampling: object) -> Outcome:
    outcome = Outcome(f"r{next(_ids)}")
    params = SamplingParams(**{"temperature": 0.0, **sampling})  # type: ignore[arg-type]
    request = GenerationRequest(outcome.request_id, tokens, max_tokens, params, session_key=session,
                                ignore_eos=ignore_eos, grammar=grammar, stop=stop or [],
                                draft_max=draft_max)
    engine.submit(request, outcome.events.append)
    return outcome


def run(engine: Engine, limit: int = 10_000) -> int:
    steps = 0
    while engine.step():
        steps += 1
        assert steps < limit
    return steps


def complete(engine: Engine, tokens: list[int], **kw: object) -> Outcome:
    outcome = submit(engine, tokens, **kw)  # type: ignore[arg-type]
    run(engine)
    return outcome
