"""Ends a fill-in-the-middle answer where the middle ends, instead of at `max_tokens`.

Code models asked to fill a hole write the middle and then carry on: the code that follows (the
suffix, again, or something like it), a Markdown fence, prose. An editor pays for every such token
in latency and then cuts it away. A line of the answer ends it, before that line, when it
- is the suffix's first line (the first non-blank line that starts a line), as written;
- is a Markdown fence, and the code around the hole has none;
- starts left of the block the middle is in (the cursor line's indentation, or the first
  written line's when the cursor line is blank), unless it only closes brackets (`}`, `)];`) or
  a block (`end`, `fi`, ...): code that dedents past the hole has left it.
The cursor's own line is judged only when nothing stands before the cursor on it. Text that might
still become such a line is held until its line is known; the blank lines before an ending line
are dropped, and the last line break too when the suffix itself starts with one.

Pure: text in, text out; the serving layer describes the hole (`Hole`), the engine feeds text.
"""

from __future__ import annotations

import re

import msgspec

_CLOSER = re.compile(r"[)\]}>]+[;,)\]}]*|(end|fi|done|esac|endif|endfor|endwhile|endfunction)\b.*")


class Hole(msgspec.Struct, frozen=True):
    """What the engine needs to know of a fill-in-the-middle request's surroundings."""

    line_before: str  # the cursor's line up to the cursor
    next_line: str | None  # the suffix's first non-blank line that starts a line, as written
    suffix_breaks_line: bool  # the suffix starts with a line break (after spaces)
    fences: bool  # the code around the hole has Markdown fences: one is code there


def hole_around(prefix: str, suffix: str) -> Hole:
    """The hole between `prefix` and `suffix` (for /infill, `prefix` ends with what was typed)."""
    line_before = prefix.rsplit("\n", 1)[-1]
    lines = suffix.split("\n")
    if line_before.strip():  # the suffix's first line is the rest of the cursor's line
        lines = lines[1:]
    else:  # the cursor's line, whole: what stands before the cursor is its indentation
        lines[0] = line_before + lines[0]
    next_line = next((line.rstrip("\r") for line in lines if line.strip()), None)
    return Hole(line_before=line_before, next_line=next_line,
                suffix_breaks_line=suffix.lstrip(" \t").startswith(("\n", "\r\n")),
                fences="```" in prefix or "```" in suffix)


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" "))


class HoleEnd:
    def __init__(self, hole: Hole) -> None:
        self._hole = hole
        self._line = hole.line_before  # the line being written, from its start
        self._judged = not hole.line_before.strip()  # whether this line can end the answer
        self._base = _indent(hole.line_before) if hole.line_before.strip() else None
        self._held = ""  # text not yet sent: the last line break, blank lines, this line so far
        self._fresh = 0  # characters of this line that were generated (held or sent)
        self._sent = False  # whether any text was sent
        self.ended = False
        self.ending_line = ""  # the line that ended it, stripped

    def push(self, text: str) -> str:
        """Add generated text; return what can be sent now."""
        if self.ended:
            return ""
        out: list[str] = []
        for piece in re.split(r"(\n)", text):
            if not piece:
                continue
            if piece == "\n":
                if self._ends(self._line):
                    return self._end(out)
                if self._line.strip():
                    self._send(out)
                self._held += "\n"
                self._line, self._judged, self._fresh = "", True, 0
                continue
            self._line += piece
            self._held += piece
            self._fresh += len(piece)
            if self._line.strip() and not self._could_end(self._line):
                self._send(out)
        return "".join(out)

    def _send(self, out: list[str]) -> None:
        if self._base is None:
            self._base = _indent(self._line)
        if self._held:
            out.append(self._held)
            self._sent = True
        self._held = ""

    def flush(self) -> str:
        """The end of generation: the line written so far is judged as it is."""
        if self.ended:
            return ""
        if self._line.strip() and self._ends(self._line):
            return self._end([])
        held, self._held = self._held, ""
        return held

    def _could_end(self, line: str) -> bool:
        """Whether the line written so far may still turn out to end the answer."""
        if not self._judged:
            return False
        stripped = line.strip()
        next_line = self._hole.next_line
        return bool(
            (next_line is not None and next_line.rstrip().startswith(line.rstrip()))
            or (not self._hole.fences and ("```".startswith(stripped) or stripped.startswith("```")))
            or (self._base is not None and _indent(line) < self._base))

    def _ends(self, line: str) -> bool:
        if not self._judged or not line.strip():
            return False
        stripped = line.strip()
        next_line = self._hole.next_line
        return bool(
            (next_line is not None and line.rstrip() == next_line.rstrip())
            or (not self._hole.fences and stripped.startswith("```"))
            or (self._base is not None and _indent(line) < self._base
                and not _CLOSER.fullmatch(stripped)))

    def _end(self, out: list[str]) -> str:
        self.ended = True
        self.ending_line = self._line.strip()
        between = self._held[: len(self._held) - self._fresh]  # a line break and blank lines
        self._held = ""
        sent = self._sent or any(out)
        kept = "\n" if between and sent and not self._hole.suffix_breaks_line else ""
        return "".join(out) + kept
