"""`gateway status --once` against a live gateway prints its models, slots and replicas."""

from __future__ import annotations

import subprocess
import sys

from tests.support import RunningServer


def test_status_once_prints_a_snapshot(server: RunningServer) -> None:
    out = subprocess.run([sys.executable, "-m", "gateway", "status", "--once", "--url", server.v1],
                         capture_output=True, text=True, timeout=60, check=True,
                         env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}).stdout
    assert "gemma-3-270m" in out and "ready" in out
    assert "/ 4" in out  # slots busy of total
    assert "replicas" in out and "cpu" in out
    assert "GPUs" in out  # its table (none here: "none read")
    assert "conversations" in out
