"""Engine processes number GPUs as NVML does (PCI bus order), unless the user chose an order."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tests.support import RunningServer


def test_engines_see_cuda_devices_in_pci_bus_order(server: RunningServer) -> None:
    state = httpx.get(server.base + "/health", timeout=10).json()["models"]["gemma-3-270m"]
    pid = state["replicas"][0]["pid"]  # shown to a client on this machine (admin)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    expected = os.environ.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    assert f"CUDA_DEVICE_ORDER={expected}".encode() in environ
