"""Editor plugins and agents open every conversation with the same long system prompt: a new named
conversation starts from that prefix's KV when another conversation of the same client holds it."""

from __future__ import annotations

import openai

from tests.support import RunningServer

MODEL = "gemma-3-270m"
SYSTEM = ("You are a careful coding assistant inside an editor. Answer briefly, show code first, "
          "never invent APIs, prefer the standard library, explain only what is asked. ") * 3


def test_named_conversations_share_a_system_prompt(server: RunningServer) -> None:
    client = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)

    def start(key: str, question: str) -> int:
        reply = client.chat.completions.create(
            model=MODEL, max_tokens=3, prompt_cache_key=key, temperature=0,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}])
        assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
        return int(reply.usage.prompt_tokens_details.cached_tokens or 0)

    assert start("editor-session-1", "How do I reverse a list?") == 0
    shared = start("editor-session-2", "How do I sort a dict by value?")
    assert shared > 60  # the system prompt's tokens, copied from the first conversation
