"""The GPUs placement can use, and what they read now: NVIDIA cards through NVML (nvidia-ml-py),
AMD cards through `rocm-smi --json` or, without ROCm (a Vulkan build), the amdgpu driver's sysfs
files; else those the config declares; else none (everything runs on the CPU)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config
from gateway.placement.plan import GIB, Gpu

log = logging.getLogger(__name__)

DRM = Path("/sys/class/drm")


@dataclass(frozen=True)
class GpuReading:
    """One GPU now: memory, and where the driver says them, load, temperature and power."""

    index: int
    name: str
    vendor: str
    memory_used: int
    memory_total: int
    utilization: float | None = None  # percent
    temperature_c: float | None = None
    power_w: float | None = None

    def as_gpu(self) -> Gpu:
        return Gpu(self.index, self.name, self.memory_total,
                   self.memory_total - self.memory_used, self.vendor)


def nvml_readings() -> list[GpuReading]:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver: a machine without NVIDIA GPUs
        return []
    try:
        found: list[GpuReading] = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            found.append(GpuReading(
                i, name.decode() if isinstance(name, bytes) else str(name), "nvidia",
                int(memory.total) - int(memory.free), int(memory.total),
                _optional(lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
                _optional(lambda: float(pynvml.nvmlDeviceGetTemperature(handle, 0))),
                _optional(lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)))
        return found
    finally:
        pynvml.nvmlShutdown()


def _optional(read: object) -> float | None:
    """A reading some cards do not give (a laptop GPU's power): None then."""
    try:
        return read()  # type: ignore[operator, no-any-return]
    except Exception:
        return None


def _number(text: object) -> float | None:
    try:
        return float(str(text).strip().rstrip("%"))
    except ValueError:
        return None


def parse_rocm_smi(text: str) -> list[GpuReading]:
    """`rocm-smi --showmeminfo vram --showuse --showtemp --showpower --showproductname --json`:
    a `cardN` object per GPU whose keys name their units (they vary a little by version)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return []
    found: list[GpuReading] = []
    cards = sorted((k for k in data if k.startswith("card") and k[4:].isdigit()),
                   key=lambda k: int(k[4:]))
    for position, card in enumerate(cards):
        fields: dict[str, str] = {k.lower(): str(v) for k, v in data[card].items()}

        def find(*words: str) -> float | None:
            for key, value in fields.items():
                if all(w in key for w in words):
                    return _number(value)
            return None

        total = find("vram total memory")
        used = find("vram total used memory")
        if total is None or used is None:
            continue
        name = fields.get("card series") or fields.get("card model") or "AMD GPU"
        found.append(GpuReading(position, name, "amd", int(used), int(total), find("gpu use"),
                                   find("temperature", "edge") or find("temperature"),
                                   find("power", "(w)")))
    return found


def rocm_smi_readings() -> list[GpuReading]:
    tool = shutil.which("rocm-smi")
    if tool is None:
        return []
    try:
        done = subprocess.run([tool, "--showmeminfo", "vram", "--showuse", "--showtemp",
                               "--showpower", "--showproductname", "--json"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_rocm_smi(done.stdout)


def sysfs_readings(drm: Path = DRM) -> list[GpuReading]:
    """amdgpu's own files (no ROCm needed): cards in PCI order, as HIP and Vulkan see them."""
    found: list[GpuReading] = []
    cards = sorted((p for p in drm.glob("card*") if p.name[4:].isdigit()),
                   key=lambda p: int(p.name[4:]))
    for card in cards:
        device = card / "device"
        total = _read_number(device / "mem_info_vram_total")
        used = _read_number(device / "mem_info_vram_used")
        if total is None or used is None:
            continue
        hwmon = next(iter(sorted(device.glob("hwmon/hwmon*"))), None)
        temperature = _read_number(hwmon / "temp1_input") if hwmon else None
        power = _read_number(hwmon / "power1_average") if hwmon else None
        found.append(GpuReading(
            len(found), "AMD GPU", "amd", int(used), int(total),
            _read_number(device / "gpu_busy_percent"),
            temperature / 1000 if temperature is not None else None,  # millidegrees
            power / 1e6 if power is not None else None))  # microwatts
    return found


def _read_number(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None


def amd_readings() -> list[GpuReading]:
    return rocm_smi_readings() or sysfs_readings()


def readings() -> list[GpuReading]:
    """Every GPU the drivers report now (NVIDIA first, else AMD); empty without drivers."""
    return nvml_readings() or amd_readings()


def nvml_gpus() -> list[Gpu]:
    return [r.as_gpu() for r in nvml_readings()]


def declared_gpus(config: Config) -> list[Gpu]:
    return [Gpu(g.index, g.name, int(g.memory_gib * GIB), int(g.memory_gib * GIB), g.vendor)
            for g in config.gpus]


def discover(config: Config) -> tuple[list[Gpu], str]:
    if config.server.gpu_discovery == "declared":
        return declared_gpus(config), "config"
    found = nvml_gpus()
    if found:
        return found, "nvml"
    amd = rocm_smi_readings()
    if amd:
        return [r.as_gpu() for r in amd], "rocm-smi"
    amd = sysfs_readings()
    if amd:
        return [r.as_gpu() for r in amd], "amdgpu sysfs"
    if config.gpus:
        return declared_gpus(config), "config"
    return [], "none"


class ReadingsCache:
    """The latest readings, refreshed in a thread when older than `max_age_s`, so /metrics and
    /health never wait on a driver or on `rocm-smi`."""

    def __init__(self, read: Callable[[], list[GpuReading]] = readings,
                 max_age_s: float = 2.0) -> None:
        self._read = read
        self.max_age_s = max_age_s
        self._latest: list[GpuReading] = []
        self._at = -float("inf")
        self._lock = threading.Lock()
        self._refreshing = False

    def latest(self) -> list[GpuReading]:
        with self._lock:
            stale = time.monotonic() - self._at > self.max_age_s and not self._refreshing
            if stale:
                self._refreshing = True
        if stale:
            threading.Thread(target=self._refresh, name="gpu-readings", daemon=True).start()
        return self._latest

    def _refresh(self) -> None:
        try:
            found = self._read()
        except Exception:  # a driver in trouble must not take the server with it
            log.exception("cannot read the GPUs")
            found = []
        with self._lock:
            self._latest, self._at, self._refreshing = found, time.monotonic(), False
