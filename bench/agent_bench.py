"""Issue 13 benchmark, on the shipped config: decode speed with `tool_choice: required` (the
answer held to the tools' JSON by a grammar) against free text, and `n=4` against four separate
requests for the same prompt (prompt tokens computed, wall time).

    python -m bench.agent_bench [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
import openai

from bench.harness import median, print_table, shipped_gateway
from gateway.progress import ProgressBar

TOOLS = [{"type": "function", "function": {
    "name": "search_code", "description": "Search the repository",
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string"}, "path": {"type": "string"},
        "limit": {"type": "integer"}}, "required": ["query", "path", "limit"]}}}]


def computed(base: str, model: str) -> int:
    state = httpx.get(base + "/health", timeout=10).json()["models"][model]
    return sum(r["prompt_tokens_computed"] for r in state["replicas"])


async def decode_rate(client: openai.AsyncOpenAI, model: str, tools: bool, seed: int) -> float:
    """Tokens a second after the first, for one answer."""
    extra: dict[str, object] = ({"tools": TOOLS, "tool_choice": "required", "max_tokens": 200}
                                if tools else {"max_tokens": 64, "extra_body": {"ignore_eos": True}})
    start = time.perf_counter()
    first = None
    stream = await client.chat.completions.create(
        model=model, stream=True, temperature=0.7, seed=seed,
        stream_options={"include_usage": True}, **extra,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": f"Find where the parser handles tabs ({seed})."}])
    tokens = 0
    async for chunk in stream:
        if first is None and chunk.choices:
            first = time.perf_counter()
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    # with tools the answer comes whole at the end: time it from the request's start
    began = start if tools else (first or start)
    return tokens / max(end - began, 1e-6)


async def choices(client: openai.AsyncOpenAI, model: str, together: bool, run: int) -> float:
    prompt = [{"role": "user", "content": " ".join(
        f"Line {i}: the build failed on step {i * 3} of run {run}." for i in range(25))
        + " Summarise the failures."}]
    start = time.perf_counter()
    if together:
        await client.chat.completions.create(model=model, messages=prompt, n=4, max_tokens=24,
                                             temperature=0.8)  # type: ignore[arg-type]
    else:
        await asyncio.gather(*(client.chat.completions.create(
            model=model, messages=prompt, max_tokens=24, temperature=0.8)  # type: ignore[arg-type]
            for _ in range(4)))
    return time.perf_counter() - start


async def measure(base_v1: str, model: str, runs: int
                  ) -> tuple[list[float], list[float], dict[bool, list[float]], dict[bool, int]]:
    base = base_v1.removesuffix("/v1")
    client = openai.AsyncOpenAI(base_url=base_v1, api_key="x", max_retries=0)
    bar = ProgressBar("agent bench")
    free = [await decode_rate(client, model, False, s) for s in range(runs)]
    bar.update(0.25)
    tooled = [await decode_rate(client, model, True, s) for s in range(runs)]
    bar.update(0.5)
    walls: dict[bool, list[float]] = {True: [], False: []}
    spent: dict[bool, int] = {True: 0, False: 0}
    for run in range(runs):
        for together in (True, False):
            before = computed(base, model)
            walls[together].append(await choices(client, model, together, run * 2 + together))
            await asyncio.sleep(0.2)  # the engine's counters come with its next occupancy report
            spent[together] += computed(base, model) - before
        bar.update(0.5 + 0.5 * (run + 1) / runs)
    return free, tooled, walls, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with shipped_gateway() as server:
        free, tooled, walls, spent = asyncio.run(measure(server.base, server.model, args.runs))
    rows = [
        ["decode tok/s, free text", f"{median(free):.1f}", "-"],
        ["decode tok/s, tool_choice required (whole answer)", f"{median(tooled):.1f}",
         f"{median(tooled) / median(free):.2f}x of free text"],
        ["n=4: wall s (p50)", f"{median(walls[True]):.2f}", f"{median(walls[True]) / median(walls[False]):.2f}x of 4 requests"],
        ["4 separate requests: wall s (p50)", f"{median(walls[False]):.2f}", "-"],
        ["n=4: prompt tokens computed (all runs)", f"{spent[True]}", f"{spent[True] / max(spent[False], 1):.2f}x of 4 requests"],
        ["4 separate requests: prompt tokens computed", f"{spent[False]}", "-"],
    ]
    print_table(f"agent surface (shipped config, {args.runs} runs)", ["figure", "value", "ratio"], rows)


if __name__ == "__main__":
    main()
