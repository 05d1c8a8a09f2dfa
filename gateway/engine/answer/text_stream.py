"""Turns a sequence's token bytes into text that is safe to send: valid UTF-8, stop strings cut,
a fill-in-the-middle answer ended where the middle ends (`hole_end`).

Pure: bytes in, text out. A character split across tokens is held until complete; text that could
be the start of a stop string is held until it is known not to be one, so a stop string that spans
tokens is never sent.
"""

from __future__ import annotations

import codecs

from gateway.engine.hole_end import Hole, HoleEnd


class TextStream:
    def __init__(self, stop: list[str], hole: Hole | None = None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = [s for s in stop if s]
        self._held = ""
        self._hole = HoleEnd(hole) if hole is not None else None
        self.stopped = False
        self.stopping_word = ""  # the stop string, or the line that left the hole, that ended it

    def push(self, piece: bytes) -> str:
        """Add a token's bytes; return the text that can be sent now."""
        if self.stopped:
            return ""
        text = self._release(self._held + self._decoder.decode(piece))
        return self._in_hole(text, last=self.stopped)

    def _in_hole(self, text: str, last: bool) -> str:
        """`text` as the hole lets it through; `last`: no more text comes."""
        hole = self._hole
        if hole is None:
            return text
        text = hole.push(text) + (hole.flush() if last and not hole.ended else "")
        if hole.ended:
            self.stopped = True
            self.stopping_word = hole.ending_line
        return text

    def flush(self) -> str:
        """End of generation: return whatever is still held (no stop string matched).

        Bytes of a character cut off by the end of generation are dropped, never sent as U+FFFD.
        """
        if self.stopped:
            return ""
        text = self._held
        self._held = ""
        self._decoder.reset()
        cut = self._find_stop(text)
        if cut is not None:
            self._stop_at(text, cut)
            text = text[:cut]
        return self._in_hole(text, last=True)

    def _stop_at(self, text: str, cut: int) -> None:
        self.stopped = True
        self.stopping_word = next(s for s in self._stops if text.startswith(s, cut))

    def _release(self, text: str) -> str:
        cut = self._find_stop(text)
        if cut is not None:
            self._stop_at(text, cut)
            self._held = ""
            return text[:cut]
        keep = self._partial_stop_length(text)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def _find_stop(self, text: str) -> int | None:
        found = [i for i in (text.find(s) for s in self._stops) if i >= 0]
        return min(found) if found else None

    def _partial_stop_length(self, text: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of a stop string."""
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:size]):
                    best = size
                    break
        return best
