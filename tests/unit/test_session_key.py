import msgspec

from gateway.api.schemas import ChatCompletionRequest
from gateway.serving.request_builder import session_key


def body(**fields: object) -> ChatCompletionRequest:
    return msgspec.convert({"model": "m", "messages": [], **fields}, ChatCompletionRequest)


def test_prompt_cache_key_then_header_then_user() -> None:
    assert session_key(body(prompt_cache_key="k", user="u"), "h") == "k"
    assert session_key(body(user="u"), "h") == "h"
    assert session_key(body(user="u"), None) == "u"
    assert session_key(body(), None) is None


def test_empty_names_do_not_name_a_conversation() -> None:
    assert session_key(body(prompt_cache_key="", user=""), "") is None
