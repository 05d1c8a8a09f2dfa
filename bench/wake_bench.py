"""Issue 14 benchmark: what a sleeping model costs its next request. The gateway on the shipped
config with `keep_alive_s` added (the model sleeps, the request wakes it) against what rig owners
do by hand today: start llama-server again (same model, slots and threads) and send the request
once it answers /health. Both figures run from the moment the user acts (the request; the
launch) to the first streamed text. The warm TTFT of each is the floor.

    python -m bench.wake_bench [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import (Server, chat_template_flags, embedded_model_path, free_port, llama_server_binary, median,
                           print_table, run, shipped_gateway, stream_completion)
from gateway.placement.cpus import threads_per_engine
from gateway.progress import ProgressBar

PROMPT = "Write one sentence about the sea."
KEEP_ALIVE_S = 1.0


def sleepy_config(shipped: Path) -> Path:
    """The shipped config, its model with `keep_alive_s` (added after its `id`)."""
    text = shipped.read_text()
    text = re.sub(r'^(id = "[^"]+")$', rf"\1\nkeep_alive_s = {KEEP_ALIVE_S}", text, count=1,
                  flags=re.MULTILINE)
    config = Path(tempfile.mkstemp(suffix=".toml")[1])
    config.write_text(text)
    return config


def wait_asleep(server: Server, seconds: float = 60) -> None:
    base = server.base.removesuffix("/v1")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = httpx.get(base + "/health", timeout=5).json()["models"][server.model]["state"]
        if state == "sleeping":
            return
        time.sleep(0.05)
    raise RuntimeError("the model did not go to sleep")


def gateway_runs(runs: int, shipped: Path) -> tuple[list[float], list[float]]:
    wakes, warm = [], []
    bar = ProgressBar("gateway: wake")
    with shipped_gateway(sleepy_config(shipped)) as server:
        for i in range(runs):
            wait_asleep(server)
            wakes.append(run(stream_completion(server, PROMPT, 8)).ttft)
            warm.append(run(stream_completion(server, PROMPT, 8)).ttft)
            bar.update((i + 1) / runs)
    return wakes, warm


def llama_server_runs(runs: int, path: Path, parallel: int, n_ctx: int, threads: int
                      ) -> tuple[list[float], list[float]]:
    binary = llama_server_binary()
    colds, warm = [], []
    bar = ProgressBar("llama-server: restart")
    for i in range(runs):
        port = free_port()
        cmd = [str(binary), "-m", str(path), "-c", str(n_ctx * parallel), "-np", str(parallel),
               "-t", str(threads), *chat_template_flags(path),
               "--host", "127.0.0.1", "--port", str(port)]
        server = Server("llama-server", f"http://127.0.0.1:{port}/v1", "gemma", {"ignore_eos": True})
        started = time.perf_counter()
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:  # what a script that restarts it does: poll /health, then send
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.perf_counter() - started > 120:
                    raise RuntimeError("llama-server did not start")
                time.sleep(0.05)
            first = run(stream_completion(server, PROMPT, 8))
            colds.append(time.perf_counter() - started - first.duration + first.ttft)
            warm.append(run(stream_completion(server, PROMPT, 8)).ttft)
        finally:
            process.terminate()
            process.wait(20)
        bar.update((i + 1) / runs)
    return colds, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--config", type=Path, default=Path("configs/default.toml"))
    args = parser.parse_args()
    text = args.config.read_text()
    parallel = int(re.search(r"^parallel = (\d+)", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    n_ctx = int(re.search(r"^n_ctx = (\d+)", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    wakes, gateway_warm = gateway_runs(args.runs, args.config)
    colds, server_warm = llama_server_runs(args.runs, embedded_model_path(), parallel, n_ctx,
                                           threads_per_engine(1))
    rows = [
        ["first text after sleeping / restarting, p50 s", f"{median(wakes):.3f}",
         f"{median(colds):.3f}", f"{median(wakes) / median(colds):.2f}x"],
        ["first text after sleeping / restarting, max s", f"{max(wakes):.3f}",
         f"{max(colds):.3f}", f"{max(wakes) / max(colds):.2f}x"],
        ["warm TTFT p50 s (the floor)", f"{median(gateway_warm):.3f}",
         f"{median(server_warm):.3f}", f"{median(gateway_warm) / median(server_warm):.2f}x"],
    ]
    print_table(f"a sleeping model's next request: gateway wake vs llama-server restarted by hand "
                f"(the embedded default, {parallel} slots x {n_ctx}, {args.runs} runs)",
                ["figure", "gateway (keep_alive_s)", "llama-server (restart)", "ratio"], rows)


if __name__ == "__main__":
    main()
