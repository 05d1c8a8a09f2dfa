"""Where a fill-in-the-middle answer ends: each rule, token by token, and text held only while a
line might still end it."""

from __future__ import annotations

import pytest

from gateway.engine.hole_end import HoleEnd, hole_around


def run(prefix: str, suffix: str, pieces: list[str]) -> tuple[str, HoleEnd]:
    end = HoleEnd(hole_around(prefix, suffix))
    text = "".join(end.push(p) for p in pieces) + end.flush()
    return text, end


def chars(text: str) -> list[str]:
    return list(text)  # one character per token: the hardest split


def test_a_dedent_past_the_cursor_line_ends_it() -> None:
    text, end = run("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n",
                    chars("a + b\n\nprint(add(5, 3))\n```\n\nIn this code"))
    assert text == "a + b" and end.ended and end.ending_line == "print(add(5, 3))"


def test_the_suffix_line_ends_it_at_any_indentation() -> None:
    prefix = "class A:\n    def f(self):\n        "
    suffix = "\n\n    def g(self):\n        pass\n"
    text, end = run(prefix, suffix, chars("x = 1\n        return x\n\n    def g(self):\n"))
    assert text == "x = 1\n        return x" and end.ending_line == "def g(self):"


def test_a_line_like_the_suffix_line_but_indented_otherwise_does_not() -> None:
    # an inner closing brace is not the function's, which the suffix starts with
    prefix, suffix = "int f(int x) {\n    ", "\n}\n"
    text, end = run(prefix, suffix, chars("if (x) {\n        x++;\n    }\n    return x;\n}\nint"))
    assert text == "if (x) {\n        x++;\n    }\n    return x;" and end.ending_line == "}"


def test_a_closer_left_of_the_block_stays_and_what_follows_ends_it() -> None:
    prefix, suffix = "int f(int x) {\n    ", ""
    text, end = run(prefix, suffix, chars("return x;\n}\n\nint g() {\n"))
    assert text == "return x;\n}\n" and end.ending_line == "int g() {"


def test_a_fence_ends_it_unless_the_code_has_fences() -> None:
    text, end = run("x = ", "\nprint(x)\n", chars("1\n```\n"))
    assert text == "1" and end.ending_line == "```"
    text, end = run("```python\nx = ", "\n```\n", chars("1\n```\n"))
    assert text == "1" and end.ending_line == "```"  # there it is the suffix's own line
    text, end = run("```python\nx = ", "\nmore\n", chars("1\n```\n"))
    assert text == "1\n```\n" and not end.ended


def test_a_blank_cursor_line_takes_the_first_written_line_as_the_block() -> None:
    text, end = run("def f():\n", "\ndef g():\n    pass\n",
                    chars("    a = 1\n    return a\n\ndef h():\n"))
    assert text == "    a = 1\n    return a" and end.ending_line == "def h():"


def test_the_suffix_line_right_away_is_an_empty_middle() -> None:
    text, end = run("def f():\n    ", "return 1\n", chars("return 1\n"))
    assert text == "" and end.ended


def test_a_line_break_the_suffix_lacks_is_kept() -> None:
    text, end = run("def f():\n", "    return a\n", chars("    a = 1\n    return a\n"))
    assert text == "    a = 1\n" and end.ended


def test_an_answer_that_stays_in_the_hole_is_untouched() -> None:
    middle = "total = 0\n    for x in xs:\n        total += x\n    return total\n"
    text, end = run("def s(xs):\n    ", "", chars(middle))
    assert text == middle and not end.ended


def test_the_end_of_generation_judges_the_line_written_so_far() -> None:
    text, end = run("def add(a, b):\n    return ", "\n", chars("a + b\nprint"))
    assert text == "a + b" and end.ended


@pytest.mark.parametrize("pieces", [["a + b\n\nprint(add(5, 3))\n"], ["a + b\n", "\n", "pr", "int(x)\n"]])
def test_any_split_into_tokens_gives_the_same_text(pieces: list[str]) -> None:
    text, _ = run("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n", pieces)
    assert text == "a + b"


def test_text_is_sent_once_its_line_cannot_end_the_answer() -> None:
    end = HoleEnd(hole_around("def f():\n    ", "\n\nprint(f())\n"))
    assert end.push("return") == "return"  # the block's own indentation: sent at once
    assert end.push(" 1\n") == " 1"  # its line break waits: blank lines may follow
    assert end.push("pri") == ""  # left of the block: held until its line is known
    assert end.push("nt(f())\n") == "" and end.ended
