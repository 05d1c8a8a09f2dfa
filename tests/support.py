"""Helpers for tests: the embedded model's path and a real `gateway serve` on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from contextlib import contextmanager
from pathlib import Path

import httpx

from gateway.config import model_entry as model_block  # noqa: F401  (tests import it from here)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningServer:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    @property
    def v1(self) -> str:
        return self.base + "/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(config_text: str, workdir: Path, timeout: float = 60,
                   env: dict[str, str] | None = None, healthy: bool = True,
                   port: int | None = None) -> Iterator[RunningServer]:
    """A `gateway serve` on a free port, yielded once /health says 200 (every model ready); with
    `healthy=False`, once no model is loading any more, whatever came of it."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.toml"
    config.write_text(config_text)
    port = port or free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    server = RunningServer(process, port, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.log()}")
            try:
                health = httpx.get(server.base + "/health", timeout=1)
            except httpx.HTTPError:
                health = None
            if health is not None and health.status_code == 200:
                break
            if health is not None and health.status_code == 503:
                models = health.json().get("models", {})
                settled = all(m["state"] not in ("loading", "restarting") for m in models.values())
                if not healthy and settled:
                    break
                failed = {name: m.get("error") for name, m in models.items() if m["state"] == "failed"}
                if healthy and failed:
                    raise RuntimeError(f"a model failed to start: {failed}\n{server.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def model_status(server: RunningServer, model: str) -> dict:
    """The model's `status` as /v1/models/{id} reports it."""
    return dict(httpx.get(f"{server.v1}/models/{model}", timeout=10).json()["status"])


def wait_for_state(server: RunningServer, model: str, state: str, seconds: float = 60) -> dict:
    """Poll until the model is in `state`; fail with its last status after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        status = model_status(server, model)
        if status["state"] == state:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


class BackgroundStream(threading.Thread):
    """A streamed completion in the background, recording when its first text arrived."""

    def __init__(self, server: RunningServer, model: str, prompt: str, max_tokens: int,
                 **extra: object) -> None:
        super().__init__(daemon=True)
        self.url = server.v1 + "/completions"
        self.body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "stream": True,
                     "ignore_eos": True, "temperature": 0, **extra}
        self.first_text_at: float | None = None
        self.text_times: list[float] = []  # when each chunk with text arrived
        self.status: int | None = None
        self.lines: list[str] = []
        self.leave = threading.Event()  # set it to hang up: the test decides when a slot frees
        self.start()

    def run(self) -> None:
        with httpx.stream("POST", self.url, json=self.body, timeout=120) as r:
            self.status = r.status_code
            for line in r.iter_lines():
                if self.leave.is_set():
                    return
                self.lines.append(line)
                if line.startswith("data: {"):
                    if any(c.get("text") for c in json.loads(line[6:]).get("choices", [])):
                        self.text_times.append(time.monotonic())
                        if self.first_text_at is None:
                            self.first_text_at = self.text_times[0]


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """A typed SSE stream's (`event:` name, `data:` JSON) pairs; comments skipped."""
    events = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.split("\n") if not line.startswith(":"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events
