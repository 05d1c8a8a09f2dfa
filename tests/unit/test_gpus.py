"""GPU readings without NVIDIA: `rocm-smi --json` output and the amdgpu driver's sysfs files,
the cache that keeps /metrics from waiting on them, and the metrics they become."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

from gateway.placement.gpus import GpuReading, ReadingsCache, parse_rocm_smi, sysfs_readings
from gateway.fleet.metrics import Metrics

# the shape rocm-smi 1.x/2.x prints for --showmeminfo vram --showuse --showtemp --showpower
# --showproductname --json (two cards; key names carry their units)
ROCM_SMI = json.dumps({
    "card0": {"Card series": "Radeon RX 7900 XTX", "Temperature (Sensor edge) (C)": "45.0",
              "Temperature (Sensor junction) (C)": "52.0", "GPU use (%)": "17",
              "Average Graphics Package Power (W)": "61.0",
              "VRAM Total Memory (B)": "25753026560", "VRAM Total Used Memory (B)": "1073741824"},
    "card1": {"Card series": "Radeon RX 6600", "Temperature (Sensor edge) (C)": "38.0",
              "GPU use (%)": "0", "Current Socket Graphics Package Power (W)": "9.0",
              "VRAM Total Memory (B)": "8573157376", "VRAM Total Used Memory (B)": "15728640"},
    "system": {"Driver version": "6.7.0"},
})


def test_rocm_smi_json_gives_each_card() -> None:
    cards = parse_rocm_smi(ROCM_SMI)
    assert [c.index for c in cards] == [0, 1] and all(c.vendor == "amd" for c in cards)
    first = cards[0]
    assert first.name == "Radeon RX 7900 XTX"
    assert (first.memory_total, first.memory_used) == (25753026560, 1073741824)
    assert (first.utilization, first.temperature_c, first.power_w) == (17.0, 45.0, 61.0)
    assert cards[1].power_w == 9.0
    gpu = first.as_gpu()
    assert gpu.free_bytes == 25753026560 - 1073741824 and gpu.vendor == "amd"
    assert parse_rocm_smi("not json") == [] and parse_rocm_smi("{}") == []


def test_amdgpu_sysfs_files_without_rocm(tmp_path: Path) -> None:
    device = tmp_path / "card1" / "device"
    (device / "hwmon" / "hwmon3").mkdir(parents=True)
    (device / "mem_info_vram_total").write_text("8573157376\n")
    (device / "mem_info_vram_used").write_text("536870912\n")
    (device / "gpu_busy_percent").write_text("42\n")
    (device / "hwmon" / "hwmon3" / "temp1_input").write_text("51000\n")
    (device / "hwmon" / "hwmon3" / "power1_average").write_text("35000000\n")
    (tmp_path / "card1-DP-1").mkdir()  # a connector, not a card
    (tmp_path / "card0" / "device").mkdir(parents=True)  # an iGPU without VRAM files: skipped
    cards = sysfs_readings(tmp_path)
    assert len(cards) == 1
    card = cards[0]
    assert (card.index, card.memory_total, card.memory_used) == (0, 8573157376, 536870912)
    assert (card.utilization, card.temperature_c, card.power_w) == (42.0, 51.0, 35.0)


def test_readings_are_refreshed_in_the_background() -> None:
    calls: list[float] = []
    go = threading.Event()

    def read() -> list[GpuReading]:
        go.wait(5)  # a slow driver tool
        calls.append(time.monotonic())
        return [GpuReading(0, "RTX 3060", "nvidia", 1 << 30, 12 << 30, 5.0, 40.0, 30.0)]

    cache = ReadingsCache(read, max_age_s=60)
    assert cache.latest() == []  # never waits: empty until the first read is in
    go.set()
    deadline = time.monotonic() + 5
    while not cache.latest() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.latest()[0].name == "RTX 3060"
    cache.latest()
    assert len(calls) == 1  # fresh: not read again


def test_gpu_readings_become_metrics() -> None:
    reading = GpuReading(2, "RTX 3060", "nvidia", 3 << 30, 12 << 30, 55.0, 61.0, 120.5)
    text = Metrics(lambda: [], lambda: [reading]).render().decode()
    values = {name: float(value) for name, value in re.findall(
        r'^(gateway_gpu_\w+)\{gpu="2",name="RTX 3060"\} (\S+)$', text, re.MULTILINE)}
    assert values == {"gateway_gpu_memory_used_bytes": 3 << 30,
                      "gateway_gpu_memory_total_bytes": 12 << 30,
                      "gateway_gpu_utilization_percent": 55.0,
                      "gateway_gpu_temperature_celsius": 61.0,
                      "gateway_gpu_power_watts": 120.5}
