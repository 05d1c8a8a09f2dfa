"""Anthropic's Messages API on the embedded default (Qwen2.5-Coder 0.5B Instruct), driven by the
official `anthropic` SDK (messages, its stream helper, tools both ways, count_tokens, errors) and
by httpx where the wire itself is the point (the event sequence, the error shape). Greedy."""

from __future__ import annotations


import anthropic
import httpx
import pytest

from tests.support import RunningServer, sse_events

MODEL = "qwen2.5-coder-0.5b"
WEATHER = {"name": "get_weather", "description": "Get the current weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
GREEDY = {"temperature": 0}  # the SDK takes sampling fields only as extra_body now
ASK = [{"role": "user", "content": "What's the weather in Paris right now?"}]


@pytest.fixture(scope="module")
def client(default_server: RunningServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=default_server.base, api_key="local", max_retries=0)


def test_a_message_answers_with_text_and_usage(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=40, extra_body=GREEDY,
                                     system="Answer in one word.",
                                     messages=[{"role": "user", "content": "Say hello in French."}])
    assert message.id.startswith("msg_") and message.role == "assistant" and message.model == MODEL
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    text = "".join(b.text for b in message.content if b.type == "text")
    assert "bonjour" in text.lower()
    assert message.usage.input_tokens > 10 and message.usage.output_tokens > 0


def test_limits_and_stop_sequences_say_why_the_answer_ended(client: anthropic.Anthropic) -> None:
    ask = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    cut = client.messages.create(model=MODEL, max_tokens=3, extra_body=GREEDY, messages=ask)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3
    stopped = client.messages.create(model=MODEL, max_tokens=60, extra_body=GREEDY, messages=ask,
                                     stop_sequences=["5"])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "5"
    assert "4" in stopped.content[0].text and "5" not in stopped.content[0].text


def test_the_stream_is_anthropic_s_event_sequence(default_server: RunningServer,
                                                  client: anthropic.Anthropic) -> None:
    body = {"model": MODEL, "max_tokens": 30, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "Count to five."}]}
    r = httpx.post(default_server.base + "/v1/messages?beta=true", json=body, timeout=120,
                   headers={"anthropic-version": "2023-06-01", "anthropic-beta": "x"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert all(name == data["type"] for name, data in events)
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] > 0
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] > 0
    streamed = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    with client.messages.stream(model=MODEL, max_tokens=30, extra_body=GREEDY,
                                messages=body["messages"]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    # (each run its own: a cached prompt may tip a greedy near-tie another way)
    assert "".join(pieces) == final.content[0].text and final.stop_reason == "end_turn"
    assert all(n in streamed for n in "12345") and all(n in final.content[0].text for n in "12345")


def test_tools_round_trip(client: anthropic.Anthropic) -> None:
    """`auto` both turns, as Claude Code sends: the model's own call format, and the same prompt
    head, so the turn with the result computes only what is new."""
    called = client.messages.create(model=MODEL, max_tokens=100, extra_body=GREEDY, tools=[WEATHER],
                                    messages=ASK, metadata={"user_id": "tools-round-trip"})
    assert called.stop_reason == "tool_use"
    use = next(b for b in called.content if b.type == "tool_use")
    assert use.name == "get_weather" and use.input == {"city": "Paris"} and use.id
    turns = [*ASK, {"role": "assistant", "content": called.content},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                           "content": "18 degrees and sunny"}]}]
    answer = client.messages.create(model=MODEL, max_tokens=60, extra_body=GREEDY, tools=[WEATHER],
                                    messages=turns, metadata={"user_id": "tools-round-trip"})
    # a reply or another call (the 0.5B model tends to call again): either is a valid message
    assert answer.stop_reason in ("end_turn", "tool_use", "max_tokens") and answer.content
    # the call and its result are in the prompt: it grew by more than the result's words
    before = client.messages.count_tokens(model=MODEL, messages=ASK, tools=[WEATHER])
    after = client.messages.count_tokens(model=MODEL, messages=turns, tools=[WEATHER])
    assert after.input_tokens > before.input_tokens + 12
    # the conversation went on from its own KV: the first turn's prompt was not computed again
    assert answer.usage.cache_read_input_tokens >= called.usage.input_tokens


def test_a_streamed_call_arrives_as_a_tool_use_block(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=100, extra_body=GREEDY, tools=[WEATHER],
                                tool_choice={"type": "tool", "name": "get_weather"},
                                messages=ASK) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    uses = [b for b in final.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].input == {"city": "Paris"}


def test_count_tokens_counts_what_the_message_computes(client: anthropic.Anthropic) -> None:
    ask = [{"role": "user", "content": "Name three colours, nothing else. Request 7b1."}]
    counted = client.messages.count_tokens(model=MODEL, messages=ask, system="Be terse.")
    message = client.messages.create(model=MODEL, max_tokens=5, extra_body=GREEDY, messages=ask,
                                     system="Be terse.")
    usage = message.usage
    assert counted.input_tokens == usage.input_tokens + usage.cache_read_input_tokens > 10


def test_claude_code_s_billing_header_and_inner_system_messages_keep_the_cache(
        client: anthropic.Anthropic) -> None:
    """Its first system block changes on every request; the conversation reuses its KV anyway.
    A `system` message among the messages (Claude Code sends them) joins the system prompt."""
    rules = "You are a coding assistant. " + " ".join(f"Rule {i}: be precise." for i in range(30))

    def ask(cch: str, turns: list[dict]) -> anthropic.types.Message:
        return client.messages.create(
            model=MODEL, max_tokens=8, extra_body=GREEDY, metadata={"user_id": "claude-code-1"},
            system=[{"type": "text", "text": f"x-anthropic-billing-header: cc_version=2.1; cch={cch};"},
                    {"type": "text", "text": rules, "cache_control": {"type": "ephemeral"}}],
            messages=turns)

    first_turn = [{"role": "user", "content": "Say OK."}]
    first = ask("a1b2c", first_turn)
    second = ask("f9e8d", [*first_turn, {"role": "assistant", "content": first.content[0].text},
                           {"role": "system", "content": "Reply briefly."},
                           {"role": "user", "content": "Say OK again."}])
    assert second.usage.cache_read_input_tokens >= first.usage.input_tokens - 2
    assert second.usage.input_tokens < first.usage.input_tokens


def test_bad_input_gets_anthropic_s_errors(default_server: RunningServer,
                                           client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="claude-nope", max_tokens=5, messages=ASK)
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as image:
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
            {"type": "text", "text": "What is this?"}]}])
    assert "images" in image.value.body["error"]["message"]
    r = httpx.post(default_server.base + "/v1/messages", timeout=30,
                   json={"model": MODEL, "messages": ASK})  # no max_tokens
    assert r.status_code == 400
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in r.json()["error"]["message"]
    bad_role = httpx.post(default_server.base + "/v1/messages", timeout=30, json={
        "model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "tool_result"}]}]})
    assert bad_role.status_code == 400 and "tool_use_id" in bad_role.json()["error"]["message"]
