"""A small text progress bar for model loads and benchmarks: redraws in place on a terminal,
prints a line per quarter otherwise (logs and CI stay readable)."""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self._tty = self.stream.isatty()
        self._last_quarter = -1
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def update(self, fraction: float) -> None:
        if self._done:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"{self.label} [{bar}] {fraction * 100:5.1f}%"
        if self._tty:
            self.stream.write("\r" + line)
            if fraction >= 1.0:
                self.stream.write("\n")
        else:
            quarter = int(fraction * 4)
            if quarter != self._last_quarter:
                self._last_quarter = quarter
                self.stream.write(line + "\n")
        self.stream.flush()
        self._done = fraction >= 1.0
