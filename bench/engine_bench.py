"""Issue 3 benchmark: continuous batching and per-conversation KV cache, side by side in one run.

Compares, on the embedded model with the same threads:
  raw      a bare batched llama_decode loop (the ceiling)
  gateway  this project (parallel = 4, as configs/default.toml)
  llama-cpp-python's own server (interrupt_requests off)
Scenarios: one stream (tok/s); 8 concurrent streams (aggregate tok/s, TTFT p50/p95);
8 conversations x 6 turns interleaved (TTFT by turn, cached tokens).

    python -m bench.engine_bench [--threads 2] [--tokens 128] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio


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
from bench.raw_ceiling import PROMPT, decode_rate
from gateway.progress import ProgressBar

PARALLEL = 4
N_CTX = 2048


async def one_stream(server: Server, tokens: int, repeats: int) -> float:
    rates = []
    await stream_completion(server, PROMPT, 8)  # warm up
    for _ in range(repeats):
        r = await stream_completion(server, PROMPT, tokens)
        rates.append((r.tokens - 1) / (r.duration - r.ttft))
    return median(rates)


async def many_streams(server: Server, streams: int, tokens: int) -> tuple[float, float, float]:
    await stream_completion(server, PROMPT, 4)
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await asyncio.gather(*(
        stream_completion(server, f"{PROMPT} (story {i})", tokens) for i in range(streams)))
    wall = loop.time() - start
    total = sum(r.tokens for r in results)
    ttfts = [r.ttft for r in results]
    return total / wall, median(ttfts), percentile(ttfts, 95)


SYSTEM = (
    "The following is a conversation between a curious student and a patient teacher about {topic}. "
    "The teacher is an expert who has spent a long career studying {topic} and explaining them to "
    "people of every age. The teacher answers every question in detail, with concrete examples, "
    "historical background, and practical observations that the student can check for themselves. "
    "The teacher never repeats an earlier answer, keeps a friendly tone, avoids jargon unless it is "
    "explained, and ends each answer with a short question that invites the student to think further. "
    "The student is preparing a report for school and wants facts that are surprising, precise, and "
    "easy to remember. Both of them speak plainly and keep their answers focused on {topic}.\n"
)

TOPICS = ["rivers", "volcanoes", "bridges", "violins", "glaciers", "comets", "orchards", "lighthouses"]


async def conversation_usage(server: Server, n_conv: int, turns: int, reply_tokens: int,
                             bar: ProgressBar) -> tuple[list[float], list[float]]:
    """Like `conversations`, but reads prompt and cached tokens to report the cached share."""
    ttft_by_turn: list[list[float]] = [[] for _ in range(turns)]
    share_by_turn: list[list[float]] = [[] for _ in range(turns)]
    done = 0

    async def talk(i: int) -> None:
        nonlocal done
        topic = TOPICS[i % len(TOPICS)]
        history = SYSTEM.format(topic=topic)
        for turn in range(turns):
            history += f"Student: Tell me something new about {topic}, part {turn + 1}.\nTeacher:"
            r = await stream_completion(server, history, reply_tokens,
                                        {"prompt_cache_key": f"conv-{i}"})
            ttft_by_turn[turn].append(r.ttft)
            if r.cached_tokens is not None and r.prompt_tokens:
                share_by_turn[turn].append(r.cached_tokens / r.prompt_tokens)
            history += r.text + "\n"
            done += 1
            bar.update(done / (n_conv * turns))

    await asyncio.gather(*(talk(i) for i in range(n_conv)))
    return [median(t) for t in ttft_by_turn], [min(s) if s else float("nan") for s in share_by_turn]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="fewer tokens and turns (a smoke run)")
    parser.add_argument("--skip-peer", action="store_true", help="leave out llama-cpp-python's server")
    parser.add_argument("--streams-only", action="store_true", help="leave out the conversations")
    args = parser.parse_args()
    tokens = 32 if args.quick else args.tokens
    turns = 3 if args.quick else 6
    reply = 16 if args.quick else 32
    path = embedded_model_path()

    def raw_rates() -> tuple[float, float]:
        bar = ProgressBar("raw ceiling")
        one = decode_rate(path, 1, tokens, args.threads, N_CTX)
        bar.update(0.5)
        many = decode_rate(path, PARALLEL, tokens, args.threads, N_CTX)
        bar.update(1.0)
        return one, many

    before = raw_rates()
    servers = [("gateway", lambda: gateway_server(path, args.threads, PARALLEL, N_CTX))]
    if not args.skip_peer:
        servers.append(("llama-cpp-python", lambda: llama_cpp_python_server(path, args.threads, N_CTX)))
    results = {}
    for name, start in servers:
        with start() as server:
            bar = ProgressBar(f"{name}: streams")
            single = asyncio.run(one_stream(server, tokens, repeats=3))
            bar.update(0.5)
            aggregate, p50, p95 = asyncio.run(many_streams(server, 8, tokens))
            bar.update(1.0)
            ttfts, shares = ([], []) if args.streams_only else asyncio.run(conversation_usage(
                server, 8, turns, reply, ProgressBar(f"{name}: conversations")))
            results[name] = (single, aggregate, p50, p95, ttfts, shares)

    after = raw_rates()  # the machine is shared: the ceiling is the mean of before and after
    raw_1, raw_b = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    rows = [["raw llama_decode (B=1 / B=4)", f"{raw_1:.1f}", "100%", f"{raw_b:.1f}", "100%", "-", "-"]]
    for name, (single, aggregate, p50, p95, _, _) in results.items():
        rows.append([name, f"{single:.1f}", f"{single / raw_1:.0%}", f"{aggregate:.1f}",
                     f"{aggregate / raw_b:.0%}", f"{p50:.2f}", f"{p95:.2f}"])
    print_table(f"Streams ({path.name}: the embedded default, {args.threads} threads, {tokens} tokens per stream)",
                ["server", "1 stream tok/s", "vs raw", "8 streams tok/s", f"vs raw B={PARALLEL}",
                 "TTFT p50 s", "TTFT p95 s"], rows)
    if args.streams_only:
        return
    header = ["server"] + [f"turn {t + 1}" for t in range(turns)]
    rows = []
    for name, (*_, ttfts, shares) in results.items():
        rows.append([f"{name} TTFT p50 s"] + [f"{t:.2f}" for t in ttfts])
        rows.append([f"{name} cached share (min)"] + [
            "n/a" if s != s else f"{s:.0%}" for s in shares])
    print_table(f"8 conversations x {turns} turns, parallel={PARALLEL}", header, rows)


if __name__ == "__main__":
    main()
