"""What of a streamed answer to a request with tools can be sent before the answer is whole.

A call is only known once it is whole, so the grammar-held generic format is sent at the end. An
answer in a template's own format (`tool_formats`) is often plain text, and a chat that offers
tools should still stream its reply: text is sent as it comes once it cannot be the start of a
call (an answer that opens with `{`, `[`, a code fence or the format's call marker, such as
`<tool_call>`, is held to the end, since small models write calls so), and a reply that turns into
a call later is held from its marker. At the end the whole answer is read as unstreamed answers are; only what was not
sent yet is sent. Pure.
"""

from __future__ import annotations

from gateway.protocol import openai
from gateway.frontend.tools.formats import CALL_MARKERS
from gateway.frontend.tools.plan import Parsed, ToolPlan


class ToolAnswerStream:
    def __init__(self, plan: ToolPlan) -> None:
        self._plan = plan
        self._whole = ""
        self._sent = ""  # the text sent so far (a prefix of the answer)
        self._held = plan.native is None  # everything waits for the end
        self._marker = CALL_MARKERS.get(plan.native or "", "")
        self._openings = ("{", "[", "```", *([self._marker] if self._marker else []))

    def push(self, text: str) -> str:
        """Add generated text; return the text that can be sent now as content."""
        self._whole += text
        if self._held:
            return ""
        whole = self._whole
        if not self._sent:
            opening = whole.lstrip()
            if any(opening.startswith(o) for o in self._openings):
                self._held = True  # it may be a call: read at the end
                return ""
            if any(o.startswith(opening) for o in self._openings):
                return ""  # nothing yet, or the start of an opening: wait for more
        marker = whole.find(self._marker, len(self._sent)) if self._marker else -1
        if marker >= 0:
            sendable = whole[:marker]
            self._held = True
        else:
            sendable = whole[: len(whole) - self._partial_marker(whole)]
        fresh = sendable[len(self._sent):]
        self._sent = sendable
        return fresh

    def finish(self) -> tuple[str, list[openai.ToolCall]]:
        """(content still to send, the calls): the whole answer read as an unstreamed one (the
        raw text when the generic format was cut short before it parsed)."""
        parsed: Parsed | None = self._plan.read(self._whole)
        if parsed is None:
            return self._whole[len(self._sent):], []
        content = parsed.content or ""
        said = self._sent.strip() if parsed.calls else self._sent
        return (content[len(said):] if content.startswith(said) else ""), parsed.calls

    def _partial_marker(self, text: str) -> int:
        """Length of the longest end of `text` that could begin the call marker."""
        for size in range(min(len(self._marker) - 1, len(text)), 0, -1):
            if text.endswith(self._marker[:size]):
                return size
        return 0
