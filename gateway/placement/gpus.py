"""The GPUs placement can use: those NVML reports (nvidia-ml-py) when it can, else those the config
declares, else none (everything runs on the CPU)."""

from __future__ import annotations

import logging

from gateway.config import Config
from gateway.placement.plan import GIB, Gpu

log = logging.getLogger(__name__)


def nvml_gpus() -> list[Gpu]:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver: a machine without NVIDIA GPUs
        return []
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            gpus.append(Gpu(i, name.decode() if isinstance(name, bytes) else str(name),
                            int(memory.total), int(memory.free)))
        return gpus
    finally:
        pynvml.nvmlShutdown()


def declared_gpus(config: Config) -> list[Gpu]:
    return [Gpu(g.index, g.name, int(g.memory_gib * GIB), int(g.memory_gib * GIB)) for g in config.gpus]


def discover(config: Config) -> tuple[list[Gpu], str]:
    found = nvml_gpus()
    if found:
        return found, "nvml"
    if config.gpus:
        return declared_gpus(config), "config"
    return [], "none"
