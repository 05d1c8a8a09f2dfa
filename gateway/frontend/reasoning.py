"""A thinking model's answer split into its reasoning and its reply, as it streams.

The format is found from the chat template, as tool formats are: `<think>...</think>` (Qwen3,
DeepSeek-R1 and its distills) or `[THINK]...[/THINK]` (Magistral). A template that opens the
think block itself in the generation prompt (DeepSeek-R1 distills' newer templates, Qwen3 with
thinking forced) starts the answer inside it: the prompt's end says so. Tags may arrive split
across pieces: a piece's end that could begin a tag is held until the next piece decides it.
Pure: no I/O. gpt-oss's harmony channels are not read here yet (issue 22).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from gateway.frontend.prompt.chat_template import ChatTemplate, TemplateError


@dataclass(frozen=True)
class ThinkFormat:
    open: str
    close: str


THINK = ThinkFormat("<think>", "</think>")
MISTRAL = ThinkFormat("[THINK]", "[/THINK]")


def format_of(template_source: str | None) -> ThinkFormat | None:
    """The thinking format a chat template renders, if any."""
    if not template_source:
        return None
    if THINK.close in template_source:
        return THINK
    if MISTRAL.close in template_source:
        return MISTRAL
    return None


def opens_thinking(fmt: ThinkFormat, prompt_text: str) -> bool:
    """Whether the prompt itself opened the think block (its end is the open tag)."""
    return prompt_text.rstrip().endswith(fmt.open)


Thinking = tuple[ThinkFormat, bool]  # the format, and whether the prompt opens the block


@functools.lru_cache(maxsize=64)
def thinking_of(template: ChatTemplate | None) -> Thinking | None:
    """How a template's answers think, if they do: its format, and whether its generation
    prompt opens the think block (seen by rendering a one-line conversation)."""
    fmt = format_of(template.source if template is not None else None)
    if template is None or fmt is None:
        return None
    try:
        prompt = template.render([{"role": "user", "content": "Hi."}])
    except TemplateError:
        return fmt, False
    return fmt, opens_thinking(fmt, prompt)


def _partial(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could begin `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ReasoningSplit:
    """Feed the answer's pieces; get (reasoning, reply) text that can be sent now. The newlines
    templates put after the open tag and after the close tag are not part of either."""

    def __init__(self, fmt: ThinkFormat, thinking: bool = False) -> None:
        self.fmt = fmt
        self.state = "thinking" if thinking else "start"  # start, thinking, reply
        self.thought = thinking  # it opened a think block
        self._held = ""
        self._line_start = True  # nothing of the reasoning (or of the reply after it) sent yet

    def push(self, text: str) -> tuple[str, str]:
        text = self._held + text
        self._held = ""
        reasoning, reply = "", ""
        while text:
            if self.state == "start":
                stripped = text.lstrip()
                if stripped.startswith(self.fmt.open):
                    self.state, self.thought = "thinking", True
                    text = stripped[len(self.fmt.open):]
                    continue
                if self.fmt.open.startswith(stripped):  # could still open: wait
                    self._held = text
                    break
                self.state = "reply"
                continue
            if self.state == "thinking":
                end = text.find(self.fmt.close)
                if end >= 0:
                    reasoning += self._trimmed(text[:end].rstrip("\n"))
                    text = text[end + len(self.fmt.close):]
                    self.state, self._line_start = "reply", True
                    continue
                keep = _partial(text, self.fmt.close)
                sendable = text[: len(text) - keep]
                body = sendable.rstrip("\n")  # newlines before the close tag are the template's
                reasoning += self._trimmed(body)
                self._held = text[len(body):]
                break
            reply += self._trimmed(text) if self.thought else text
            break
        return reasoning, reply

    def _trimmed(self, text: str) -> str:
        if self._line_start:
            text = text.lstrip("\n")
            self._line_start = not text
        return text

    def finish(self) -> tuple[str, str]:
        """What is still held: a cut-short tag is text of the part it was in."""
        held, self._held = self._held, ""
        if self.state == "thinking":
            return self._trimmed(held.rstrip("\n")), ""
        return "", held


def split(fmt: ThinkFormat, text: str, thinking: bool = False) -> tuple[str | None, str]:
    """A whole answer as (its reasoning, None when it did not think; its reply)."""
    splitter = ReasoningSplit(fmt, thinking)
    reasoning, reply = splitter.push(text)
    more_reasoning, more_reply = splitter.finish()
    reasoning, reply = reasoning + more_reasoning, reply + more_reply
    return (reasoning.rstrip("\n") if splitter.thought else None), reply
