"""Where an answer stands in its thinking block, token by token: how many tokens it has thought,
and when its budget is spent, the tokens that close the block (written by the engine in place of
the model's next draws, as llama-server does). Pure: text in, decisions out."""

from __future__ import annotations

from gateway.engine.requests import ThinkingSpec


class ThinkingWatch:
    def __init__(self, spec: ThinkingSpec) -> None:
        self.spec = spec
        self.state = "thinking" if spec.opened else "start"  # start, thinking, done
        self.tokens = 0  # tokens drawn inside the block
        self._text = ""  # the start not yet decided, or the block's end that may begin its close

    def closing_due(self) -> list[int]:
        """The tokens to write next instead of drawing (once): the block is open and its budget
        spent. Empty otherwise."""
        budget = self.spec.budget
        if self.state == "thinking" and budget is not None and self.tokens >= budget:
            self.state = "done"
            return list(self.spec.closing)
        return []

    def push(self, text: str) -> None:
        """A drawn token's text."""
        if self.state == "start":
            self._text += text
            begun = self._text.lstrip()
            if begun.startswith(self.spec.open):
                self.state, self._text = "thinking", begun[len(self.spec.open):]
                self._closed_in(self._text)
            elif not self.spec.open.startswith(begun):
                self.state = "done"  # it answers without thinking
            return
        if self.state == "thinking":
            self.tokens += 1
            self._closed_in(self._text + text)

    def _closed_in(self, text: str) -> None:
        close = self.spec.close
        if close in text:
            self.state = "done"
        else:
            self._text = text[-(len(close) - 1):] if len(close) > 1 else ""
