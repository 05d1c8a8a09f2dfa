"""The reasoning split on answers as thinking models write them, whole and streamed piece by
piece (every split point, tags cut anywhere)."""

from __future__ import annotations

import pytest

from gateway.engine.requests import ThinkingSpec
from gateway.engine.answer.thinking_watch import ThinkingWatch
from gateway.frontend.reasoning import (HARMONY, MISTRAL, THINK, HarmonySplit, Thinking, format_of,
                                        opens_thinking)

QWEN3 = "<think>\nThe user greets me. I greet back.\n</think>\n\nHello! How can I help?"
R1_OPENED = "Okay, 2 + 2 is 4.\n</think>\n\nThe answer is 4."  # the prompt opened <think>
MAGISTRAL = "[THINK]Short sum.[/THINK]It is 4."
# gpt-oss, as llama.cpp renders its control tokens (the ending <|return|> ends generation)
GPT_OSS = ("<|channel|>analysis<|message|>User asks 2+2. Simple.<|end|>"
           "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.")
GPT_OSS_CALL = ("<|channel|>analysis<|message|>Need the weather tool.<|end|><|start|>assistant"
                "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
                '{"city":"Paris"}')
GPT_OSS_PREAMBLE = ("<|channel|>commentary<|message|>Let me check.<|end|>"
                    "<|start|>assistant<|channel|>final<|message|>Done.")


def streamed(fmt, text: str, size: int, thinking: bool = False) -> tuple[str, str]:
    splitter = Thinking(fmt, thinking).splitter()
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
    (HARMONY, GPT_OSS, False, "User asks 2+2. Simple.", "2 + 2 = 4."),
    (HARMONY, "still thinking<|end|><|start|>assistant<|channel|>final<|message|>ok", True,
     "still thinking", "ok"),
    (HARMONY, GPT_OSS_CALL, False, "Need the weather tool.",
     '<tool_call>{"name": "get_weather", "arguments": {"city":"Paris"}}</tool_call>'),
    (HARMONY, GPT_OSS_PREAMBLE, False, None, "Let me check.Done."),
    (HARMONY, "<|channel|>final<|message|>Just the answer.", False, None, "Just the answer."),
    (HARMONY, "<|channel|>analysis<|message|>cut sho", False, "cut sho", ""),
])
def test_whole_and_streamed_answers_split_the_same(fmt, text: str, thinking: bool,
                                                   reasoning: str | None, reply: str) -> None:
    assert Thinking(fmt, thinking).split(text) == (reasoning, reply)
    for size in range(1, len(text) + 1):
        assert streamed(fmt, text, size, thinking) == (reasoning or "", reply), size


def test_the_format_comes_from_the_template_and_the_prompt_s_end() -> None:
    assert format_of("{{ '<think>\\n' }}{{ content }}{{ '</think>' }}") is THINK
    assert format_of("[THINK]{{ x }}[/THINK]") is MISTRAL
    assert format_of("{% for m in messages %}{{ m.content }}{% endfor %}") is None
    assert format_of(None) is None
    assert opens_thinking(THINK, "<|im_start|>assistant\n<think>\n")
    assert not opens_thinking(THINK, "<|im_start|>assistant\n")


def test_harmony_is_found_from_gpt_oss_s_markup() -> None:
    assert format_of("{{ '<|start|>assistant<|channel|>analysis<|message|>' }}") is HARMONY
    assert isinstance(Thinking(HARMONY).splitter(), HarmonySplit)


def _spec(opened: bool, budget: int | None) -> ThinkingSpec:
    return ThinkingSpec(open="<think>", close="</think>", opened=opened, budget=budget,
                        closing=[7, 8, 9])


def _watch(watch: ThinkingWatch, pieces: list[str]) -> list[int]:
    """Feed pieces as the engine does (asking for the closing before each draw); what it wrote."""
    written: list[int] = []
    for piece in pieces:
        due = watch.closing_due()
        if due:
            written = due
            break
        watch.push(piece)
    return written


def test_the_watch_counts_thinking_tokens_and_closes_the_block_when_the_budget_is_spent() -> None:
    watch = ThinkingWatch(_spec(opened=False, budget=3))
    assert _watch(watch, ["<th", "ink>", "a", "b", "c", "d"]) == [7, 8, 9]
    assert watch.tokens == 3 and watch.state == "done"
    assert watch.closing_due() == []  # once


def test_the_watch_lets_a_block_closed_in_time_be() -> None:
    watch = ThinkingWatch(_spec(opened=True, budget=4))
    assert _watch(watch, ["a", "</th", "ink>", "reply", "more", "words"]) == []
    assert watch.tokens == 3 and watch.state == "done"


def test_an_answer_that_does_not_think_is_never_closed() -> None:
    watch = ThinkingWatch(_spec(opened=False, budget=0))
    assert _watch(watch, [" ", "Hello", "there"]) == []
    assert watch.tokens == 0


def test_budget_zero_on_an_opened_block_closes_before_the_first_draw() -> None:
    watch = ThinkingWatch(_spec(opened=True, budget=0))
    assert watch.closing_due() == [7, 8, 9]


def test_no_budget_counts_without_closing() -> None:
    watch = ThinkingWatch(_spec(opened=True, budget=None))
    assert _watch(watch, ["x"] * 50) == []
    assert watch.tokens == 50


def test_the_real_templates_name_their_formats() -> None:
    """The thinking templates shipped with real models (tests/fixtures/templates) are read as
    their formats, and render."""
    from pathlib import Path

    from gateway.frontend.prompt.chat_template import ChatTemplate

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "templates"
    expected = {"Qwen-Qwen3-0.6B.jinja": THINK,
                "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja": THINK,
                "openai-gpt-oss-120b.jinja": HARMONY,
                "mistralai-Ministral-3-14B-Reasoning-2512.jinja": MISTRAL}
    for name, fmt in expected.items():
        source = (folder / name).read_text()
        assert format_of(source) is fmt, name
        prompt = ChatTemplate(source, "<s>", "</s>").render([{"role": "user", "content": "Hi."}])
        assert "Hi." in prompt, name
