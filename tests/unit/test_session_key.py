import msgspec

from gateway.protocol.openai import ChatCompletionRequest
from gateway.engine.kv.session_key import named
from gateway.frontend.prompt.completion_request import session_key


def body(**fields: object) -> ChatCompletionRequest:
    return msgspec.convert({"model": "m", "messages": [], **fields}, ChatCompletionRequest)


def test_prompt_cache_key_then_header_within_the_client() -> None:
    assert session_key(body(prompt_cache_key="k", user="u"), "h", "key:a") == named("key:a", "k")
    assert session_key(body(user="u"), "h", "key:a") == named("key:a", "h")


def test_user_is_a_label_not_a_conversation() -> None:
    assert session_key(body(user="u"), None, "key:a") is None


def test_two_clients_naming_the_same_key_have_two_conversations() -> None:
    assert session_key(body(prompt_cache_key="k"), None, "key:a") != session_key(
        body(prompt_cache_key="k"), None, "key:b")


def test_empty_names_do_not_name_a_conversation() -> None:
    assert session_key(body(prompt_cache_key="", user=""), "", "key:a") is None
