"""Issue 25 benchmark: what the serving path costs when the model costs nothing. The tiny 2-layer
GGUF the tests write (`tests/tiny_model.py`), chat streamed with `include_usage`, `ignore_eos`,
`--tokens` per stream, the same threads and slots for the gateway and llama-server, side by side
in one run at 1, 8, 32 and 128 streams (the median of `--repeat` runs each): aggregate tok/s,
TTFT p50, and the CPU time per token
of the gateway process and of its engine process (from /proc; llama-server is one process).
The client shares the machine: the ratio is what counts.

    python -m bench.overhead_bench [--threads 2] [--tokens 256] [--streams 1,8,32,128]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.harness import (Server, children, cpu_seconds, gateway_server, llama_server, median,
                           print_table, stream_chat)
from gateway.progress import ProgressBar
from tests.tiny_model import write_tiny_gguf

N_CTX = 512  # per slot: the prompt and 256 tokens fit


async def streams(server: Server, n: int, tokens: int) -> tuple[float, float, int]:
    """(aggregate tok/s, TTFT p50, tokens) of `n` chats at once."""
    start = time.perf_counter()
    results = await asyncio.gather(*(stream_chat(
        server, [{"role": "user", "content": f"Conversation {i}: say anything."}], tokens)
        for i in range(n)))
    wall = time.perf_counter() - start
    made = sum(r.completion_tokens or r.tokens for r in results)
    return made / wall, median([r.ttft for r in results]), made


def measure(server: Server, counts: list[int], tokens: int, repeat: int, bar: ProgressBar
            ) -> dict[int, tuple[float, float, float, float]]:
    """Per stream count, the median of `repeat` runs: tok/s, TTFT p50, CPU ms per token of the
    server (the gateway's own process) and of its engines (none for llama-server)."""
    engines = children(server.pid)
    asyncio.run(streams(server, 1, 8))  # warm
    out = {}
    for i, n in enumerate(counts):
        runs = []
        for _ in range(repeat):
            cpu0 = cpu_seconds(server.pid), sum(cpu_seconds(p) for p in engines)
            rate, ttft, made = asyncio.run(streams(server, n, tokens))
            cpu1 = cpu_seconds(server.pid), sum(cpu_seconds(p) for p in engines)
            runs.append((rate, ttft, (cpu1[0] - cpu0[0]) * 1000 / made,
                         (cpu1[1] - cpu0[1]) * 1000 / made))
        runs.sort()
        out[n] = runs[len(runs) // 2]
        bar.update((i + 1) / len(counts))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--streams", default="1,8,32,128")
    parser.add_argument("--repeat", type=int, default=3, help="runs per stream count (median)")
    args = parser.parse_args()
    run(args.threads, args.tokens, [int(n) for n in args.streams.split(",")], args.repeat)


def run(threads: int, tokens: int, counts: list[int], repeat: int) -> None:
    """Measure both servers and print the table (the peers benchmark runs it too)."""
    path = write_tiny_gguf(Path(tempfile.mkdtemp()) / "tiny.gguf")
    slots = max(counts)
    with gateway_server(path, threads, slots, N_CTX,  # one client sends them all
                        server={"max_requests_per_client": 0}) as server:
        ours = measure(server, counts, tokens, repeat, ProgressBar("overhead: gateway"))
    with llama_server(path, threads, slots, N_CTX) as server:
        peer = measure(server, counts, tokens, repeat, ProgressBar("overhead: llama-server"))
    rows = []
    for n in counts:
        g, p = ours[n], peer[n]
        rows.append([str(n), f"{g[0]:,.0f}", f"{p[0]:,.0f}", f"{g[0] / p[0]:.2f}x",
                     f"{g[1] * 1000:.0f} / {p[1] * 1000:.0f} ms",
                     f"{g[2]:.2f} + {g[3]:.2f}", f"{p[2]:.2f}"])
    print_table(f"serving overhead on the tiny model ({tokens} tokens per stream, "
                f"{slots} slots, {threads} threads)",
                ["streams", "gateway tok/s", "llama-server tok/s", "ratio", "TTFT p50 gw / ls",
                 "CPU ms/token gateway + engine", "CPU ms/token llama-server"], rows)


if __name__ == "__main__":
    main()
