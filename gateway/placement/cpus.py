"""The host's physical CPU cores and its RAM, and how many threads each engine gets by default:
the cores shared out among all the engine processes (llama.cpp's threads fight over hyper-threads and over
each other; `threads = 0` on every engine would put all of them on every core)."""

from __future__ import annotations

import os
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def physical_cores(cpuinfo: str | None = None) -> int:
    """Distinct (package, core) pairs in /proc/cpuinfo; the logical CPUs where it says none."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:
            cpuinfo = ""
    cores, package = set(), ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            package = value.strip()
        elif key == "core id":
            cores.add((package, value.strip()))
    return len(cores) or os.cpu_count() or 1


def host_ram_bytes() -> int:
    """The host's physical RAM (0 where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0


def threads_per_engine(engines: int, cores: int | None = None) -> int:
    cores = physical_cores() if cores is None else cores
    return max(1, cores // max(1, engines))
