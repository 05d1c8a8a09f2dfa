from dataclasses import dataclass

from gateway.fleet.router import Router


@dataclass(eq=False)
class FakeReplica:
    name: str
    in_flight: int = 0


def test_new_conversations_go_to_the_least_loaded_replica() -> None:
    a, b = FakeReplica("a", 3), FakeReplica("b", 1)
    assert Router().pick([a, b], None) is b


def test_a_conversation_sticks_to_its_replica() -> None:
    a, b = FakeReplica("a", 0), FakeReplica("b", 5)
    router = Router()
    assert router.pick([a, b], "chat-1") is a
    a.in_flight = 10  # now busier, but it holds chat-1's KV cache
    assert router.pick([a, b], "chat-1") is a
    assert router.pick([a, b], "chat-2") is b


def test_sticky_replica_gone_falls_back() -> None:
    a, b = FakeReplica("a"), FakeReplica("b", 2)
    router = Router()
    router.pick([a, b], "chat")
    assert router.pick([b], "chat") is b


def test_an_unkeyed_conversation_returns_to_the_replica_that_computed_its_prefix() -> None:
    a, b = FakeReplica("a", 0), FakeReplica("b", 0)
    router = Router()
    turn_1 = list(range(100, 180))
    assert router.pick([a, b], None, turn_1) is a
    a.in_flight = 5  # busier now, but it holds the conversation's KV cache
    turn_2 = turn_1 + list(range(500, 540))  # the first turn, the answer, the next question
    assert router.pick([a, b], None, turn_2) is a
    # a different conversation is new: it goes to the least loaded replica
    assert router.pick([a, b], None, list(range(900, 980))) is b


def test_a_shared_system_prompt_alone_does_not_pin_new_conversations() -> None:
    a, b = FakeReplica("a", 0), FakeReplica("b", 0)
    router = Router()
    system = list(range(1000, 1032))
    assert router.pick([a, b], None, system + list(range(1, 100))) is a
    a.in_flight = 3
    # it shares 32 of 132 tokens with what `a` computed: not a conversation `a` would continue
    assert router.pick([a, b], None, system + list(range(2000, 2100))) is b


def test_a_prefix_whose_replica_is_gone_goes_to_the_least_loaded() -> None:
    a, b, c = FakeReplica("a", 0), FakeReplica("b", 4), FakeReplica("c", 1)
    router = Router()
    prompt = list(range(64))
    assert router.pick([a, b, c], None, prompt) is a
    assert router.pick([b, c], None, prompt + [7] * 16) is c
