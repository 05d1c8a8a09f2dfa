"""A thinking model's answer split into its reasoning and its reply, as it streams.

The format is found from the chat template, as tool formats are: `<think>...</think>` (Qwen3,
DeepSeek-R1 and its distills), `[THINK]...[/THINK]` (Magistral) or gpt-oss's harmony channels
(`analysis` is the reasoning, `final` the reply). A template that opens the think block itself in
the generation prompt (DeepSeek-R1 distills' newer templates, Qwen3 with thinking forced) starts
the answer inside it: the request's prompt says so (`ThinkingSpec.opened`). Tags may arrive split
across pieces: a piece's end that could begin a tag is held until the next piece decides it.
Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.engine.requests import GenerationRequest


@dataclass(frozen=True)
class ThinkFormat:
    name: str
    open: str  # what opens the thinking block in an answer
    close: str  # what ends it
    closing: str  # what the gateway writes to end it when the budget is spent
    special: bool = False  # its markup is control tokens, sent as text only when asked


THINK = ThinkFormat("think", "<think>", "</think>", "\n</think>\n\n")
# Magistral's tags are control tokens in its GGUFs: sent as text only when asked
MISTRAL = ThinkFormat("mistral", "[THINK]", "[/THINK]", "[/THINK]", special=True)
HARMONY = ThinkFormat("harmony", "<|channel|>analysis<|message|>", "<|end|>",
                      "<|end|><|start|>assistant<|channel|>final<|message|>", special=True)
FORMATS = {f.name: f for f in (THINK, MISTRAL, HARMONY)}


def format_of(template_source: str | None) -> ThinkFormat | None:
    """The thinking format a chat template renders, if any."""
    if not template_source:
        return None
    if "<|channel|>" in template_source and "analysis" in template_source:
        return HARMONY
    if THINK.close in template_source:
        return THINK
    if MISTRAL.close in template_source:
        return MISTRAL
    return None


def opens_thinking(fmt: ThinkFormat, prompt_text: str) -> bool:
    """Whether the prompt itself opened the think block (its end is the open tag)."""
    return prompt_text.rstrip().endswith(fmt.open)


@dataclass(frozen=True)
class Thinking:
    """How one request's answer thinks: its format, and whether the prompt opened the block."""

    fmt: ThinkFormat
    opened: bool = False

    def splitter(self) -> ReasoningSplit | HarmonySplit:
        if self.fmt is HARMONY:
            return HarmonySplit(self.opened)
        return ReasoningSplit(self.fmt, self.opened)

    def split(self, text: str) -> tuple[str | None, str]:
        """A whole answer as (its reasoning, None when it did not think or its block was
        empty; its reply)."""
        splitter = self.splitter()
        reasoning, reply = splitter.push(text)
        more_reasoning, more_reply = splitter.finish()
        reasoning, reply = reasoning + more_reasoning, reply + more_reply
        return (reasoning.rstrip("\n") or None if splitter.thought else None), reply


def thinking_of(request: GenerationRequest, raw: bool = False) -> Thinking | None:
    """How a built request's answer thinks; None: its template does not think, or the client
    asked for the raw text (`raw`)."""
    spec = request.thinking
    if spec is None or raw:
        return None
    fmt = next((f for f in FORMATS.values() if f.open == spec.open), THINK)
    return Thinking(fmt, spec.opened)


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


_HARMONY_MARKS = ("<|end|>", "<|start|>", "<|channel|>")
_HEADER_MAX = 256  # a "header" longer than this never reaching <|message|> is text


class HarmonySplit:
    """gpt-oss's harmony answer (its markup sent as text): `<|channel|>NAME[ to=RECIPIENT]
    [<|constrain|>json]<|message|>BODY<|end|>`, messages after the first opened with
    `<|start|>assistant`. `analysis` is the reasoning; `final`, and `commentary` meant for the
    user, the reply; a `commentary` message to `functions.NAME` is a tool call, given on in the
    Hermes markup the tool parser reads (`<tool_call>{"name", "arguments"}</tool_call>`)."""

    def __init__(self, opened: bool = False) -> None:
        self.thought = opened
        self.channel: str | None = "analysis" if opened else None  # None: in a header
        self.recipient = ""
        self._arguments = False  # the open call's arguments have begun
        self._held = ""

    def push(self, text: str) -> tuple[str, str]:
        text = self._held + text
        self._held = ""
        reasoning, reply = "", ""
        while text:
            if self.channel is None:
                begun = text.lstrip()
                if begun and not any(m.startswith(begun[:len(m)]) for m in _HARMONY_MARKS[1:]):
                    self.channel, self.recipient, text = "final", "", begun  # not a header
                    continue
                end = text.find("<|message|>")
                if end < 0 and len(text) > _HEADER_MAX:
                    self.channel, self.recipient = "final", ""  # no header after all: text
                    continue
                if end < 0:
                    self._held = text
                    break
                self._open(text[:end])
                text = text[end + len("<|message|>"):]
                if self.recipient:
                    reply += '<tool_call>{"name": %s, "arguments": ' % json.dumps(self.recipient)
                    self._arguments = False
                continue
            ends = [i for i in (text.find(m) for m in _HARMONY_MARKS) if i >= 0]
            end = min(ends) if ends else -1
            body = text if end < 0 else text[:end]
            keep = 0 if end >= 0 else max(_partial(body, m) for m in _HARMONY_MARKS)
            if keep:
                self._held, body = body[len(body) - keep:], body[: len(body) - keep]
            r, p = self._body(body)
            reasoning, reply = reasoning + r, reply + p
            if end < 0:
                break
            reply += self._close()
            text = text[end + (len("<|end|>") if text.startswith("<|end|>", end) else 0):]
        return reasoning, reply

    def _open(self, header: str) -> None:
        """A message's header: its channel and recipient."""
        spaced = header.replace("<|start|>", " ").replace("<|channel|>", " channel=")
        words = spaced.replace("<|constrain|>", " ").split()
        self.channel, self.recipient = "final", ""
        for word in words:
            if word.startswith("channel="):
                self.channel = word[len("channel="):]
            elif word.startswith("to=functions."):
                self.recipient = word[len("to=functions."):]
        if self.channel == "analysis" and not self.recipient:
            self.thought = True

    def _body(self, body: str) -> tuple[str, str]:
        if self.channel == "analysis" and not self.recipient:
            return body, ""
        if self.recipient and body.strip():
            self._arguments = True
        return "", body

    def _close(self) -> str:
        """The open message ends."""
        closing = ""
        if self.recipient and self.channel is not None:
            closing = ("" if self._arguments else "{}") + "}</tool_call>"
        self.channel, self.recipient = None, ""
        return closing

    def finish(self) -> tuple[str, str]:
        held, self._held = self._held, ""
        if self.channel is None:  # a header cut short is markup; anything else was text
            begun = held.lstrip()
            header = any(begun.startswith(m) for m in _HARMONY_MARKS[1:])
            return "", "" if header else held
        reasoning, reply = self._body(held)
        return reasoning, reply + self._close()
