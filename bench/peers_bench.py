"""Issue 11 benchmark: the shipped gateway against llama.cpp's own server, side by side in one run,
with the raw llama.cpp ceiling. Same model (the shipped config's first: the embedded Qwen2.5-Coder
0.5B Instruct), same threads; the gateway runs `configs/default.toml` as users get it; llama-server
gets the same slots and context per slot (`-np` and `-c` from that config) and the GGUF's template
(`--jinja`; see ../shared/peers/llama-server.sh); llama-cpp-python's server (one sequence, its own
defaults) where `pip install 'llama-cpp-python[server]'` put it.

Scenarios: one stream; 8 concurrent streams; 8 conversations x 6 turns; 2 ongoing conversations
during a burst of 6 new ~350-token prompts; 8 new keyed conversations sharing an 800-token system
prompt. Prints one table with the ratios the issue sets targets for; then the serving-overhead
table (`bench.overhead_bench`: the tiny model, 1 to 128 streams; `--no-overhead` leaves it out).

    python -m bench.peers_bench [--threads 2] [--tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
from pathlib import Path

from bench import overhead_bench
from bench.engine_bench import conversation_usage, many_streams, one_stream
from bench.harness import (
    Server,
    llama_cpp_python_server,
    llama_server,
    median,
    percentile,
    print_table,
    shipped_gateway,
    shipped_model,
    stream_completion,
)
from bench.raw_ceiling import decode_rate
from bench.scheduling_bench import scenario
from gateway.config import load_config
from gateway.engine.process.decode_check import decodes
from gateway.progress import ProgressBar

RULES = " ".join(f"Rule {j}: keep every function short, typed and tested." for j in range(70))
SHARED_SYSTEM = f"You are the coding assistant of a small team. Follow these rules.\n{RULES}\n"


async def shared_system_prompt(server: Server, n: int = 8, reply: int = 16
                               ) -> tuple[float, float, int]:
    """n keyed conversations opening with the same ~800-token system prompt, one after another:
    (TTFT of the first, TTFT p50 of the later ones, the fewest cached tokens among the later)."""
    ttfts, cached = [], []
    for i in range(n):
        prompt = f"{SHARED_SYSTEM}User {i}: how should I name test number {i}?\nAssistant:"
        r = await stream_completion(server, prompt, reply, {"prompt_cache_key": f"shared-{i}"})
        ttfts.append(r.ttft)
        cached.append(r.cached_tokens or 0)  # llama-cpp-python's server does not report it
    return ttfts[0], median(ttfts[1:]), min(cached[1:])


def measure(server: Server, tokens: int, name: str) -> dict[str, float]:
    bar = ProgressBar(f"{name}")
    out: dict[str, float] = {}
    out["one"] = asyncio.run(one_stream(server, tokens, repeats=3))
    bar.update(0.15)
    out["eight"], _, _ = asyncio.run(many_streams(server, 8, tokens))
    bar.update(0.3)
    ttfts, _ = asyncio.run(conversation_usage(server, 8, 6, 32, ProgressBar(f"{name}: 8x6")))
    out["turn6"] = ttfts[-1]
    bar.update(0.6)
    record = asyncio.run(scenario(server, ProgressBar(f"{name}: burst")))
    out["idle_p50"] = median(record.idle)
    out["burst_p95"] = percentile(record.burst, 95) if record.burst else float("nan")
    out["new_p50"] = median(record.new)
    bar.update(0.85)
    out["shared_first"], out["shared_p50"], shared_cached = asyncio.run(
        shared_system_prompt(server))
    out["shared_cached"] = float(shared_cached)
    bar.update(1.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--no-overhead", action="store_true",
                        help="leave out the serving-overhead table (bench.overhead_bench)")
    parser.add_argument("--config", type=Path, default=Path("configs/default.toml"),
                        help="the gateway's config (default: the shipped one)")
    parser.add_argument("--gateway-only", action="store_true",
                        help="measure the gateway alone (to tune a config; no ratios)")
    args = parser.parse_args()
    model = shipped_model(args.config)
    path, context = model.path, load_config(args.config).models[0].context
    raw_bar = ProgressBar("raw ceiling")
    extra_buffers = decodes(path, extra_buffers=True)[0]  # false where they fault (AMX in a VM)
    raw_one = decode_rate(path, 1, args.tokens, args.threads, context.n_ctx,
                          extra_buffers=extra_buffers)
    raw_bar.update(1.0)
    results: dict[str, dict[str, float]] = {}
    with shipped_gateway(args.config) as server:
        results["gateway"] = measure(server, args.tokens, f"gateway ({args.config})")
    if args.gateway_only:
        print({k: round(v, 3) for k, v in results["gateway"].items()})
        return
    with llama_server(path, args.threads, context.parallel, context.n_ctx) as server:
        results["llama-server"] = measure(server, args.tokens,
                                          f"llama-server -np {context.parallel}")
    if importlib.util.find_spec("fastapi") is not None:
        with llama_cpp_python_server(path, args.threads, context.n_ctx, extra_buffers) as server:
            results["llama-cpp-python"] = measure(server, args.tokens, "llama-cpp-python server")
    else:
        print("(no llama-cpp-python server column: pip install 'llama-cpp-python[server]')")
    nan = float("nan")
    c = results.get("llama-cpp-python", {k: nan for k in results["gateway"]})
    g, p = results["gateway"], results["llama-server"]
    rows = [
        ["one stream tok/s", f"{g['one']:.1f}", f"{p['one']:.1f}", f"{c['one']:.1f}",
         f"{g['one'] / raw_one:.0%} of raw ({raw_one:.1f})", ">= 97% of raw"],
        ["8 streams aggregate tok/s", f"{g['eight']:.1f}", f"{p['eight']:.1f}", f"{c['eight']:.1f}",
         f"{g['eight'] / p['eight']:.2f}x", ">= 1.0x"],
        ["8x6 conversations: TTFT turn 6 s", f"{g['turn6']:.3f}", f"{p['turn6']:.3f}",
         f"{c['turn6']:.3f}", f"{g['turn6'] / p['turn6']:.2f}x", "<= 0.6x"],
        ["burst: ongoing TTFT p95 / idle p50", f"{g['burst_p95'] / g['idle_p50']:.1f}x",
         f"{p['burst_p95'] / p['idle_p50']:.1f}x", f"{c['burst_p95'] / c['idle_p50']:.1f}x",
         f"{g['burst_p95']:.3f} / {g['idle_p50']:.3f} s", "<= 2x"],
        ["burst: new-conversation TTFT p50 s", f"{g['new_p50']:.2f}", f"{p['new_p50']:.2f}",
         f"{c['new_p50']:.2f}", f"{g['new_p50'] / p['new_p50']:.2f}x", "<= 1.0x"],
        ["shared system prompt: later TTFT p50 s", f"{g['shared_p50']:.3f}",
         f"{p['shared_p50']:.3f}", f"{c['shared_p50']:.3f}",
         f"{g['shared_p50'] / p['shared_p50']:.2f}x", "<= 1.0x"],
        ["shared system prompt: cached tokens (min)", f"{g['shared_cached']:.0f}",
         f"{p['shared_cached']:.0f}", "n/a", "-", "> 0"],
    ]
    print_table(f"gateway vs llama-server ({model.id}, {context.parallel} slots of "
                f"{context.n_ctx}, {args.threads} threads, {args.tokens} tokens per stream)",
                ["figure", "gateway", "llama-server", "llama-cpp-python", "gateway vs llama-server",
                 "target"], rows)
    if not args.no_overhead:  # what the serving path costs when the model costs nothing
        overhead_bench.run(args.threads, 256, [1, 8, 32, 128], 3)


if __name__ == "__main__":
    main()
