from dataclasses import dataclass

from gateway.serving.router import Router


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
