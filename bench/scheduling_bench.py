"""Issue 4 benchmark: do conversations under way stay fast while a burst of new ones arrives?

K ongoing conversations keep taking turns (short replies, a short think time) while a burst of M new
conversations with long prompts (~350 tokens) arrives; parallel = 4. Side by side in one run:
gateway `latency_first`, gateway `fifo` (same build, same settings but the policy), and
llama-cpp-python's server. Reports ongoing TTFT p50 when idle, ongoing TTFT p95 during the burst,
and the new conversations' TTFT p50.

    python -m bench.scheduling_bench [--threads 2] [--skip-peer]
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

import httpx

from bench.harness import (
    Server,
    embedded_model_path,
    gateway_server,
    llama_cpp_python_server,
    median,
    percentile,
    print_table,
    stream_completion,
)
from gateway.progress import ProgressBar

PARALLEL = 4
N_CTX = 2048
K_ONGOING = 2
M_NEW = 6
IDLE_TURNS = 6
REPLY_TOKENS = 12
NEW_REPLY_TOKENS = 48
THINK_S = 0.15
LONG_PROMPT_WORDS = 115  # about 350 tokens with the lead-in

SYSTEM = ("A friendly assistant helps a user plan a garden. It answers briefly and precisely, "
          "and always suggests one next step.\n")


@dataclass
class Record:
    idle: list[float] = field(default_factory=list)
    burst: list[float] = field(default_factory=list)
    new: list[float] = field(default_factory=list)
    new_completed: int = 0


def long_prompt(i: int) -> str:
    words = " ".join(f"item{(i * 37 + j) % 97}" for j in range(LONG_PROMPT_WORDS))
    return f"Document {i}: an inventory to summarise.\n{words}\nSummary:"


async def scenario(server: Server, bar: ProgressBar) -> Record:
    record = Record()
    histories = [SYSTEM for _ in range(K_ONGOING)]
    burst_running = asyncio.Event()
    burst_done = asyncio.Event()

    async def turn(client: httpx.AsyncClient, k: int, n: int) -> float:
        histories[k] += f"User: question {n} about bed {k}?\nAssistant:"
        r = await stream_completion(server, histories[k], REPLY_TOKENS,
                                    {"prompt_cache_key": f"ongoing-{k}"})
        histories[k] += r.text + "\n"
        return r.ttft

    async def ongoing(client: httpx.AsyncClient, k: int) -> None:
        await turn(client, k, 0)  # the conversation's first turn: now the engine knows it
        for n in range(1, IDLE_TURNS + 1):
            record.idle.append(await turn(client, k, n))
            await asyncio.sleep(THINK_S)
        await burst_running.wait()
        n = IDLE_TURNS + 1
        while not burst_done.is_set() and n < 60:
            ttft = await turn(client, k, n)
            if not burst_done.is_set():
                record.burst.append(ttft)
            n += 1
            await asyncio.sleep(THINK_S)

    async def newcomer(client: httpx.AsyncClient, i: int) -> None:
        r = await stream_completion(server, long_prompt(i), NEW_REPLY_TOKENS)
        record.new.append(r.ttft)
        if r.tokens > 0:
            record.new_completed += 1
        bar.update(0.5 + 0.5 * len(record.new) / M_NEW)

    async def burst(client: httpx.AsyncClient) -> None:
        while len(record.idle) < K_ONGOING * IDLE_TURNS:
            await asyncio.sleep(0.05)
        bar.update(0.5)
        burst_running.set()
        await asyncio.sleep(THINK_S)  # the ongoing conversations are mid-turn when it lands
        await asyncio.gather(*(newcomer(client, i) for i in range(M_NEW)))
        burst_done.set()

    async with httpx.AsyncClient(timeout=900, limits=httpx.Limits(max_connections=64)) as client:
        await asyncio.gather(burst(client), *(ongoing(client, k) for k in range(K_ONGOING)))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prefill-chunk", type=int, default=64)
    parser.add_argument("--reserved-slots", type=int, default=K_ONGOING)
    parser.add_argument("--skip-peer", action="store_true", help="leave out llama-cpp-python's server")
    args = parser.parse_args()
    path = embedded_model_path()
    common = {"prefill_chunk": args.prefill_chunk, "reserved_slots": args.reserved_slots}
    servers = [
        ("gateway latency_first", lambda: gateway_server(path, args.threads, PARALLEL, N_CTX,
                                                         policy="latency_first", **common)),
        ("gateway fifo", lambda: gateway_server(path, args.threads, PARALLEL, N_CTX,
                                                policy="fifo", **common)),
    ]
    if not args.skip_peer:
        servers.append(("llama-cpp-python", lambda: llama_cpp_python_server(path, args.threads, N_CTX)))
    rows = []
    for name, start in servers:
        with start() as server:
            r = asyncio.run(scenario(server, ProgressBar(name)))
        idle = median(r.idle)
        p95 = percentile(r.burst, 95)
        print(name, "burst ttfts", sorted(round(x, 3) for x in r.burst))
        rows.append([name, f"{idle:.3f}", f"{p95:.3f}", f"{p95 / idle:.1f}x", str(len(r.burst)),
                     f"{median(r.new):.2f}", f"{r.new_completed}/{M_NEW}"])
    print_table(
        f"K={K_ONGOING} ongoing conversations, burst of M={M_NEW} new (~350-token prompts), "
        f"parallel={PARALLEL}, {args.threads} threads, prefill_chunk={args.prefill_chunk}, "
        f"reserved_slots={args.reserved_slots}",
        ["server", "ongoing TTFT p50 idle s", "ongoing TTFT p95 burst s", "burst/idle",
         "burst turns", "new TTFT p50 s", "new completed"], rows)


if __name__ == "__main__":
    main()
