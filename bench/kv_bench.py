"""Issue 23 benchmark: the KV cache's layouts side by side in one run, on the default model and
Gemma, the gateway against llama-server with the same flags (`-ctk/-ctv`, `-fa`), and the raw
copy of a shared prefix (unified pool against a stream per slot).

Per layout (f16, q8_0, q4_0, K q8_0 with V q4_0; flash attention auto): KV bytes per token (llama.cpp's, from a
conversation's saved state) and conversations of `--n-ctx` tokens resident in `--budget-gib`;
greedy agreement with f16 (share of identical tokens over a set of prompts, the earliest
divergence); decode and prefill tok/s. Then the sessions scenario (more conversations than
slots, a small RAM budget for the spilled ones): TTFT p50 by turn, f16 against q8_0.

    python -m bench.kv_bench [--threads 2] [--models default,gemma] [--layouts f16,q8_0-q4_0] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx

from bench.engine_bench import conversation_usage
from bench.harness import (
    Server, gateway_server, llama_server, median, print_table, shipped_model, stream_completion)
from gateway.config import load_config
from gateway.engine.llama_backend import KvLayout, LlamaContext, LlamaModel
from gateway.model_source import resolve_model_path
from gateway.placement.footprint import footprint
from gateway.progress import ProgressBar

LAYOUTS = {"f16": ("f16", "f16"), "q8_0": ("q8_0", "q8_0"), "q4_0": ("q4_0", "q4_0"),
           "q8_0-q4_0": ("q8_0", "q4_0")}  # K q8_0, V q4_0
PROMPTS = ["The history of the printing press begins", "def fibonacci(n):\n    ",
           "Photosynthesis is the process by which", "SELECT name, count(*) FROM orders",
           "Once upon a time in a small village", "The three laws of thermodynamics are",
           "To install the package on Linux, run", "In 1969, the Apollo 11 mission"]
LONG = " ".join(f"Line {i}: the quick brown fox jumps over the lazy dog." for i in range(120))


def chunks(server: Server, prompt: str, tokens: int) -> list[str]:
    """The streamed text pieces of a greedy completion (one token each on both servers)."""
    body = {"model": server.model, "prompt": prompt, "max_tokens": tokens, "temperature": 0,
            "stream": True, **server.extra}
    pieces = []
    with httpx.stream("POST", f"{server.base}/completions", json=body, timeout=300) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:]).get("choices", []):
                    if choice.get("text"):
                        pieces.append(choice["text"])
    return pieces


def measure(server: Server, tokens: int, bar: ProgressBar) -> dict[str, object]:
    outputs = []
    for i, prompt in enumerate(PROMPTS):
        outputs.append(chunks(server, prompt, tokens))
        bar.update((i + 1) / (len(PROMPTS) + 2))
    one = asyncio.run(stream_completion(server, "Write a long story about a lighthouse.", 128))
    decode = (one.tokens - 1) / max(one.duration - one.ttft, 1e-9)
    bar.update((len(PROMPTS) + 1) / (len(PROMPTS) + 2))
    long = asyncio.run(stream_completion(server, f"{time.time()} {LONG}", 1))
    prefill = (long.prompt_tokens or 0) / long.ttft
    bar.update(1.0)
    return {"outputs": outputs, "decode": decode, "prefill": prefill}


def agreement(outputs: list[list[str]], reference: list[list[str]]) -> tuple[float, int]:
    """(share of identical tokens, the earliest divergence) against the f16 answers."""
    same = total = 0
    first = min(len(r) for r in reference)
    for out, ref in zip(outputs, reference):
        total += len(ref)
        diverged = next((i for i, (a, b) in enumerate(zip(out, ref)) if a != b),
                        min(len(out), len(ref)))
        same += diverged  # tokens after a divergence answer another context: not counted same
        if diverged < len(ref):
            first = min(first, diverged)
    return same / max(total, 1), first


def kv_per_token(path: Path, kind: tuple[str, str], threads: int) -> float:
    """llama.cpp's bytes per token of a conversation's KV (its saved state over its length)."""
    model = LlamaModel(path)
    try:
        ctx = LlamaContext(model, 1024, 1, 512, threads, kv=KvLayout(*kind))
        tokens = model.tokenize(LONG, add_special=True)[:500]
        batch = ctx.batch
        batch.clear()
        for pos, token in enumerate(tokens):
            batch.add(token, pos, 0, pos == len(tokens) - 1)
        ctx.decode()
        size = ctx.sequence_state_size(0) / len(tokens)
        ctx.close()
        return size
    finally:
        model.close()


def copy_time(path: Path, unified: bool, threads: int, n_ctx: int, parallel: int) -> float:
    """Seconds to give another slot an 800-token prefix one holds (the shared system prompt
    case) and decode its next token there, less that decode alone: llama.cpp copies between
    streams during the next decode, so the copy is timed with it. Median of 5."""
    model = LlamaModel(path)
    try:
        ctx = LlamaContext(model, n_ctx, parallel, 512, threads, kv=KvLayout(unified=unified))
        tokens = model.tokenize(LONG * 2, add_special=True)[:800]
        for start in range(0, len(tokens), 512):
            ctx.batch.clear()
            for pos in range(start, min(start + 512, len(tokens))):
                ctx.batch.add(tokens[pos], pos, 0, False)
            ctx.decode()

        def step(seq: int, copy: bool) -> float:
            began = time.perf_counter()
            if copy:
                ctx.copy_sequence(0, seq)
            ctx.batch.clear()
            ctx.batch.add(tokens[-1], len(tokens), seq, True)
            ctx.decode()
            elapsed = time.perf_counter() - began
            ctx.forget(seq, len(tokens))
            return elapsed

        with_copy = [step(1 + i % (parallel - 1), True) for i in range(5)]
        alone = [step(0, False) for _ in range(5)]
        ctx.close()
        return max(0.0, median(with_copy) - median(alone))
    finally:
        model.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=48, help="tokens per greedy answer")
    parser.add_argument("--models", default="default,gemma")
    parser.add_argument("--n-ctx", type=int, default=4096, help="a resident conversation's size")
    parser.add_argument("--budget-gib", type=float, default=1.0, help="memory for KV")
    parser.add_argument("--quick", action="store_true", help="fewer prompts, no sessions")
    parser.add_argument("--layouts", default=",".join(LAYOUTS),
                        help="KV layouts (K-V types when they differ), f16 first")
    args = parser.parse_args()
    for layout in set(LAYOUTS) - set(args.layouts.split(",")):
        del LAYOUTS[layout]
    config = load_config(Path("configs/default.toml"))
    paths = {"default": shipped_model().path}
    if "gemma" in args.models:
        paths["gemma"] = resolve_model_path(config.models[1], config.server.cache_dir)
    if args.quick:
        del PROMPTS[3:]
    for name in args.models.split(","):
        path = paths[name]
        context = config.models[0 if name == "default" else 1].context
        results: dict[tuple[str, str], dict[str, object]] = {}
        for layout, kind in LAYOUTS.items():
            with gateway_server(path, args.threads, context.parallel, context.n_ctx, "gateway",
                                cache_type_k=kind[0], cache_type_v=kind[1]) as server:
                results["gateway", layout] = measure(server, args.tokens,
                                                     ProgressBar(f"{name} gateway {layout}"))
            flags = ("-ctk", kind[0], "-ctv", kind[1], "-fa", "auto")
            with llama_server(path, args.threads, context.parallel, context.n_ctx, flags) as server:
                results["llama-server", layout] = measure(
                    server, args.tokens, ProgressBar(f"{name} llama-server {layout}"))
        rows = []
        f16_bytes = None
        for layout, kind in LAYOUTS.items():
            measured = kv_per_token(path, kind, args.threads)
            planned = footprint(path, 1, 1, 512, *kind).kv
            f16_bytes = f16_bytes or measured
            resident = int(args.budget_gib * (1 << 30) // (measured * args.n_ctx))
            g, p = results["gateway", layout], results["llama-server", layout]
            g_same, g_first = agreement(g["outputs"], results["gateway", "f16"]["outputs"])  # type: ignore[arg-type]
            p_same, p_first = agreement(p["outputs"], results["llama-server", "f16"]["outputs"])  # type: ignore[arg-type]
            rows.append([layout, f"{measured / 1024:.1f} KiB (planned {planned / 1024:.1f})",
                         f"{resident} ({f16_bytes / measured:.2f}x f16)",
                         f"{g_same:.0%} (first at {g_first})", f"{p_same:.0%} (first at {p_first})",
                         f"{g['decode']:.1f} / {p['decode']:.1f}",
                         f"{g['prefill']:.0f} / {p['prefill']:.0f}"])
        print_table(f"KV layouts on {name} ({path.name}, {context.parallel} slots of "
                    f"{context.n_ctx}, {args.threads} threads)",
                    ["KV", "bytes/token", f"resident in {args.budget_gib:g} GiB at {args.n_ctx}",
                     "gateway = f16 greedy", "llama-server = f16 greedy",
                     "decode tok/s gw / ls", "prefill tok/s gw / ls"], rows)
        split = copy_time(path, False, args.threads, context.n_ctx, context.parallel)
        unified = copy_time(path, True, args.threads, context.n_ctx, context.parallel)
        print_table(f"shared 800-token prefix copied to another slot ({name})",
                    ["layout", "copy time"],
                    [["a stream per slot", f"{split * 1000:.2f} ms"],
                     ["unified pool", f"{unified * 1000:.2f} ms"],
                     ["unified vs per slot", f"{unified / split:.2f}x"]])
    if args.quick:
        return
    path, context = paths["default"], config.models[0].context
    rows = []
    for layout in ("f16", "q8_0"):
        kind = LAYOUTS[layout]
        with gateway_server(path, args.threads, 4, 2048, "gateway", cache_type_k=kind[0],
                            cache_type_v=kind[1], ram_mb=48) as server:
            ttft, share = asyncio.run(conversation_usage(server, 12, 4, 16,
                                                         ProgressBar(f"sessions {layout}")))
        rows.append([layout, *[f"{t:.3f} s ({s:.0%} cached)" for t, s in zip(ttft, share)]])
    print_table("sessions: 12 conversations x 4 turns on 4 slots, 48 MB of RAM for the spilled "
                "(TTFT p50 by turn, least cached share)",
                ["KV", "turn 1", "turn 2", "turn 3", "turn 4"], rows)


if __name__ == "__main__":
    main()
