"""Turns a sequence's token bytes into text that is safe to send: valid UTF-8, stop strings cut.

Pure: bytes in, text out. A character split across tokens is held until complete; text that could
be the start of a stop string is held until it is known not to be one, so a stop string that spans
tokens is never sent.
"""

from __future__ import annotations

import codecs


class TextStream:
    def __init__(self, stop: list[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = [s for s in stop if s]
        self._held = ""
        self.stopped = False

    def push(self, piece: bytes) -> str:
        """Add a token's bytes; return the text that can be sent now."""
        if self.stopped:
            return ""
        return self._release(self._held + self._decoder.decode(piece))

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
            self.stopped = True
            return text[:cut]
        return text

    def _release(self, text: str) -> str:
        cut = self._find_stop(text)
        if cut is not None:
            self.stopped = True
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
