"""The reasoning split on answers as thinking models write them, whole and streamed piece by
piece (every split point, tags cut anywhere)."""

from __future__ import annotations

import pytest

from gateway.frontend.reasoning import MISTRAL, THINK, ReasoningSplit, format_of, opens_thinking, split

QWEN3 = "<think>\nThe user greets me. I greet back.\n</think>\n\nHello! How can I help?"
R1_OPENED = "Okay, 2 + 2 is 4.\n</think>\n\nThe answer is 4."  # the prompt opened <think>
MAGISTRAL = "[THINK]Short sum.[/THINK]It is 4."


def streamed(fmt, text: str, size: int, thinking: bool = False) -> tuple[str, str]:
    splitter = ReasoningSplit(fmt, thinking)
    reasoning = reply = ""
    for i in range(0, len(text), size):
        r, c = splitter.push(text[i:i + size])
        reasoning, reply = reasoning + r, reply + c
    r, c = splitter.finish()
    return reasoning + r, reply + c


@pytest.mark.parametrize(("fmt", "text", "thinking", "reasoning", "reply"), [
    (THINK, QWEN3, False, "The user greets me. I greet back.", "Hello! How can I help?"),
    (THINK, R1_OPENED, True, "Okay, 2 + 2 is 4.", "The answer is 4."),
    (MISTRAL, MAGISTRAL, False, "Short sum.", "It is 4."),
    (THINK, "Just an answer, <think> mentioned later.", False, None,
     "Just an answer, <think> mentioned later."),
    (THINK, "<think>\nI was cut short by max_tok", False, "I was cut short by max_tok", ""),
    (THINK, "<think>\nNothing to add.\n</think>", False, "Nothing to add.", ""),
])
def test_whole_and_streamed_answers_split_the_same(fmt, text: str, thinking: bool,
                                                   reasoning: str | None, reply: str) -> None:
    assert split(fmt, text, thinking) == (reasoning, reply)
    for size in range(1, len(text) + 1):
        assert streamed(fmt, text, size, thinking) == (reasoning or "", reply), size


def test_the_format_comes_from_the_template_and_the_prompt_s_end() -> None:
    assert format_of("{{ '<think>\\n' }}{{ content }}{{ '</think>' }}") is THINK
    assert format_of("[THINK]{{ x }}[/THINK]") is MISTRAL
    assert format_of("{% for m in messages %}{{ m.content }}{% endfor %}") is None
    assert format_of(None) is None
    assert opens_thinking(THINK, "<|im_start|>assistant\n<think>\n")
    assert not opens_thinking(THINK, "<|im_start|>assistant\n")
