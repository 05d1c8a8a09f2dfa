"""The scheduler as pure policy: a fake clock, hand-built facts, and properties over random bursts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.engine.scheduler import Running, Scheduler, Waiting
from gateway.engine.settings import Policy, SchedulerSettings


def make(policy: Policy = Policy.LATENCY_FIRST, slots: int = 4, **kw: float) -> Scheduler:
    return Scheduler(SchedulerSettings(policy=policy, **kw), slots)  # type: ignore[arg-type]


def test_ongoing_turns_are_admitted_before_earlier_new_conversations() -> None:
    s = make()
    for i in range(3):
        assert s.offer(Waiting(f"new{i}", ongoing=False, arrived=float(i))).accepted
    s.offer(Waiting("chat", ongoing=True, arrived=5.0))
    plan = s.plan(now=5.0, free_slots=1, running=[])
    assert plan.admit == ["chat"]
    assert s.plan(now=5.0, free_slots=2, running=[]).admit == ["new0", "new1"]


def test_fifo_keeps_arrival_order() -> None:
    s = make(Policy.FIFO)
    s.offer(Waiting("new0", ongoing=False, arrived=0.0))
    s.offer(Waiting("chat", ongoing=True, arrived=1.0))
    assert s.plan(now=1.0, free_slots=1, running=[]).admit == ["new0"]


def test_reserved_slots_are_borrowed_and_given_back() -> None:
    s = make(reserved_slots=1, slots=2)
    s.offer(Waiting("new0", ongoing=False, arrived=0.0))
    s.offer(Waiting("new1", ongoing=False, arrived=0.5))
    assert s.plan(now=1.0, free_slots=2, running=[]).admit == ["new0", "new1"]  # no slot idles
    answering = [Running("new0", False, False, 0.0), Running("new1", False, False, 0.5)]
    s.offer(Waiting("chat", ongoing=True, arrived=2.0))
    plan = s.plan(now=2.0, free_slots=0, running=answering)
    assert plan.pause == ["new1"] and plan.admit == ["chat"]  # the borrower gives it back


def test_without_a_reservation_answers_are_not_preempted() -> None:
    s = make(reserved_slots=0, slots=2)
    answering = [Running("new0", False, False, 0.0), Running("new1", False, False, 0.5)]
    s.offer(Waiting("chat", ongoing=True, arrived=2.0))
    plan = s.plan(now=2.0, free_slots=0, running=answering)
    assert plan.pause == [] and plan.admit == []
    prefilling = [Running("new0", False, False, 0.0), Running("new1", False, True, 0.5)]
    assert s.plan(now=2.0, free_slots=0, running=prefilling).pause == ["new1"]


def test_a_running_ongoing_turn_is_never_preempted() -> None:
    s = make(reserved_slots=1, slots=2)
    running = [Running("chat-a", True, True, 0.0), Running("chat-b", True, False, 0.5)]
    s.offer(Waiting("chat-c", ongoing=True, arrived=2.0))
    assert s.plan(now=2.0, free_slots=0, running=running).pause == []


def test_full_queue_refuses_new_conversations_with_retry_after() -> None:
    s = make(max_queue=2)
    assert s.offer(Waiting("a", False, 0.0)).accepted
    assert s.offer(Waiting("b", False, 0.0)).accepted
    verdict = s.offer(Waiting("c", False, 0.0))
    assert not verdict.accepted and verdict.retry_after_s >= 1
    assert s.offer(Waiting("chat", True, 0.0)).accepted  # an ongoing turn is never refused


def test_the_queue_limit_counts_only_requests_that_truly_wait() -> None:
    s = make(max_queue=2, reserved_slots=1)
    # an idle server with 4 slots (the reserved one borrowable), then 2 may wait
    verdicts = [s.offer(Waiting(f"n{i}", False, 0.0), free_slots=4).accepted for i in range(7)]
    assert verdicts == [True] * 6 + [False]
    assert s.plan(now=0.0, free_slots=4, running=[]).admit == ["n0", "n1", "n2", "n3"]


def test_ongoing_turns_waiting_take_free_slots_first() -> None:
    s = make(max_queue=1, reserved_slots=0)
    s.offer(Waiting("chat", True, 0.0), free_slots=2)
    assert s.offer(Waiting("a", False, 0.0), free_slots=2).accepted  # gets the other slot
    assert s.offer(Waiting("b", False, 0.0), free_slots=2).accepted  # waits: one may
    assert not s.offer(Waiting("c", False, 0.0), free_slots=2).accepted


def test_max_queue_zero_admits_while_slots_are_free_and_refuses_waiting() -> None:
    s = make(max_queue=0, reserved_slots=0, slots=2)
    assert s.offer(Waiting("a", False, 0.0), free_slots=2).accepted
    assert s.offer(Waiting("b", False, 0.0), free_slots=2).accepted
    assert not s.offer(Waiting("c", False, 0.0), free_slots=2).accepted
    assert not s.offer(Waiting("d", False, 0.0), free_slots=0).accepted


def test_requests_waiting_past_the_timeout_expire() -> None:
    s = make(queue_timeout_s=30.0)
    s.offer(Waiting("old", False, 0.0))
    s.offer(Waiting("young", False, 20.0))
    plan = s.plan(now=31.0, free_slots=0, running=[])
    assert plan.expire == ["old"]
    assert [w.request_id for w in s.waiting] == ["young"]


def test_aging_lets_a_new_conversation_pass_ongoing_turns() -> None:
    s = make(max_wait_s=10.0)
    s.offer(Waiting("patient", False, 0.0))
    s.offer(Waiting("chat", True, 9.0))
    assert s.plan(now=9.5, free_slots=1, running=[]).admit == ["chat"]
    s.offer(Waiting("chat2", True, 10.5))
    assert s.plan(now=11.0, free_slots=1, running=[]).admit == ["patient"]


def test_a_new_prefill_is_paused_for_an_ongoing_turn() -> None:
    s = make()
    running = [Running("new-decoding", False, prefilling=False, arrived=0.0),
               Running("new-prefill-old", False, prefilling=True, arrived=1.0),
               Running("new-prefill-young", False, prefilling=True, arrived=2.0),
               Running("chat-prefill", True, prefilling=True, arrived=2.5)]
    s.offer(Waiting("chat", True, 3.0))
    plan = s.plan(now=3.0, free_slots=0, running=running)
    assert plan.pause == ["new-prefill-young"]
    assert plan.admit == ["chat"]


def test_fifo_never_pauses() -> None:
    s = make(Policy.FIFO)
    s.offer(Waiting("chat", True, 3.0))
    plan = s.plan(now=3.0, free_slots=0, running=[Running("n", False, True, 0.0)])
    assert plan.pause == [] and plan.admit == []


def test_blocked_requests_keep_their_place() -> None:
    s = make()
    s.offer(Waiting("second-turn", True, 0.0))
    s.offer(Waiting("other", True, 1.0))
    plan = s.plan(now=1.0, free_slots=2, running=[], blocked=frozenset({"second-turn"}))
    assert plan.admit == ["other"]
    assert s.plan(now=2.0, free_slots=1, running=[]).admit == ["second-turn"]


def test_a_step_feeds_every_decoder_and_shares_the_prompt_budget() -> None:
    s = make()
    running = [Running("new", False, True, 0.0, prompt_left=300),
               Running("chat", True, True, 1.0, prompt_left=40),
               Running("answering", False, False, 0.5)]
    # the ongoing prompt alone: a step as short as on an idle server for its first token
    assert s.step_tokens(running, capacity=512, chunk=64) == {"chat": 40}
    # a new conversation's answer sits out no two steps in a row; an ongoing one never does
    waited = Running("answering", False, False, 0.5, sat_out=True)
    assert s.step_tokens([running[0], running[1], waited], 512, 64) == {"answering": 1, "chat": 40}
    other_chat = Running("other-chat", True, False, 0.2)
    assert s.step_tokens([running[1], other_chat], 512, 64) == {"other-chat": 1, "chat": 40}
    # then the new prompt moves on, every step
    assert s.step_tokens([running[0], running[2]], 512, 64) == {"answering": 1, "new": 64}
    assert make(Policy.FIFO).step_tokens(running, 512, 64) == {"answering": 1, "new": 64}
    # only an ongoing prompt and nothing decoding: the whole batch, the fastest first token
    assert s.step_tokens([running[1]], 512, 16) == {"chat": 40}
    alone = [Running("new", False, True, 0.0, prompt_left=300)]
    assert s.step_tokens(alone, 512, 64) == {"new": 64}  # an ongoing turn may come at any time


step_views = st.lists(st.tuples(st.booleans(), st.integers(0, 400), st.floats(0, 10)),
                      min_size=0, max_size=8)


@settings(max_examples=300, deadline=None)
@given(step_views, st.sampled_from(list(Policy)), st.integers(1, 128), st.integers(8, 512))
def test_step_budget_properties(views: list[tuple[bool, int, float]], policy: Policy, chunk: int,
                                capacity: int) -> None:
    """Never more than the batch holds, never more prompt than the budget allows, every decoder
    fed every step (but a new conversation's, in a step giving an ongoing turn its first token,
    never twice in a row), never more of a prompt than is left."""
    running = [Running(f"r{i}", ongoing, prompt_left > 0, arrived, prompt_left,
                       sat_out=prompt_left == 0 and i % 2 == 0)
               for i, (ongoing, prompt_left, arrived) in enumerate(views)][:capacity]
    plan = make(policy).step_tokens(running, capacity, chunk)
    assert sum(plan.values()) <= capacity
    decoding = [r for r in running if r.prompt_left == 0]
    ongoing_prefill = any(r.ongoing and r.prompt_left for r in running)
    for r in decoding:
        may_sit_out = (policy is Policy.LATENCY_FIRST and ongoing_prefill and not r.ongoing
                       and not r.sat_out)
        assert plan.get(r.request_id) == 1 or (may_sit_out and r.request_id not in plan)
    fed = [r for r in decoding if r.request_id in plan]
    prompt = sum(n for rid, n in plan.items() if rid not in {r.request_id for r in decoding})
    new_prefill = any(not r.ongoing and r.prompt_left for r in running)
    if fed or (policy is Policy.LATENCY_FIRST and new_prefill and not ongoing_prefill):
        assert prompt <= chunk
    if policy is Policy.LATENCY_FIRST and ongoing_prefill:  # new prompts wait that step
        assert not any(plan.get(r.request_id) for r in running if not r.ongoing and r.prompt_left)
    assert all(plan.get(r.request_id, 0) <= r.prompt_left for r in running if r.prompt_left)


def test_positions_follow_admission_order() -> None:
    s = make()
    s.offer(Waiting("new", False, 0.0))
    assert s.positions(now=0.5) == {"new": 1}
    assert s.offer(Waiting("chat", True, 1.0)).accepted
    assert s.positions(now=1.0) == {"chat": 1, "new": 2}  # the ongoing turn goes first


events = st.lists(
    st.tuples(st.booleans(), st.floats(min_value=0.0, max_value=3.0), st.booleans()),
    min_size=1, max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(events, st.sampled_from(list(Policy)), st.integers(1, 4), st.integers(0, 2))
def test_properties_over_random_bursts(burst: list[tuple[bool, float, bool]], policy: Policy,
                                       slots: int, reserved: int) -> None:
    """No slot is over-committed, the queue bound holds, a running decode is never paused, every
    request is eventually admitted or expired (none starves), and nothing is admitted twice."""
    reserved = min(reserved, slots - 1)
    cfg = SchedulerSettings(policy=policy, max_queue=8, queue_timeout_s=60.0, max_wait_s=5.0,
                            reserved_slots=reserved)
    s = Scheduler(cfg, slots)
    now = 0.0
    running: dict[str, Running] = {}
    finish_at: dict[str, float] = {}
    admitted: set[str] = set()
    expired: set[str] = set()
    offered: set[str] = set()
    kinds: dict[str, bool] = {}
    for i, (ongoing, gap, cancel) in enumerate(burst):
        now += gap
        rid = f"r{i}"
        kinds[rid] = ongoing
        verdict = s.offer(Waiting(rid, ongoing, now))
        if verdict.accepted:
            offered.add(rid)
        assert s.new_waiting() <= cfg.max_queue
        if cancel and i > 0:
            s.remove(f"r{i - 1}")
            offered.discard(f"r{i - 1}")
        for _ in range(3):
            for r in [r for r, t in finish_at.items() if t <= now]:
                running.pop(r, None)
                finish_at.pop(r)
            plan = s.plan(now, slots - len(running), list(running.values()))
            for r in plan.pause:  # a new conversation: still prefilling, or a borrower
                assert not running[r].ongoing
                new_running = sum(not v.ongoing for v in running.values())
                assert running[r].prefilling or new_running > slots - reserved
                item = running.pop(r)
                finish_at.pop(r)
                s.requeue(Waiting(r, item.ongoing, item.arrived))
                admitted.discard(r)
            assert len(plan.admit) <= slots - len(running)
            for r in plan.admit:
                assert r not in admitted
                admitted.add(r)
                running[r] = Running(r, kinds[r], prefilling=False, arrived=now)
                finish_at[r] = now + 0.5
            expired.update(plan.expire)
            now += 0.1
    # drain: time moves on, every accepted request ends admitted or expired
    for _ in range(2000):
        if not s.waiting:
            break
        now += 0.5
        running = {r: v for r, v in running.items() if finish_at.get(r, 0) > now}
        plan = s.plan(now, slots - len(running), list(running.values()))
        for r in plan.admit:
            admitted.add(r)
            running[r] = Running(r, kinds[r], False, now)
            finish_at[r] = now + 0.5
        expired.update(plan.expire)
    assert not s.waiting
    assert offered <= admitted | expired


def test_one_client_cannot_fill_the_queue() -> None:
    s = make(max_queue=10, max_queue_per_client=2)
    assert all(s.offer(Waiting(f"a{i}", False, 0.0, client="a")).accepted for i in range(2))
    assert not s.offer(Waiting("a2", False, 0.0, client="a")).accepted
    assert s.offer(Waiting("b0", False, 0.0, client="b")).accepted  # others still get in
    assert s.offer(Waiting("chat", True, 0.0, client="a")).accepted  # an ongoing turn always does
