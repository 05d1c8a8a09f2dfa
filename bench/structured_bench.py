"""What JSON output costs: decode speed with `response_format` json_object against free text.

Side by side in one run on the embedded model, same threads: the raw ceiling (bare `llama_decode`,
B=1), the gateway (one stream, and 4 at once), and llama-cpp-python's server (one stream; its JSON
mode is the same llama.cpp JSON grammar, sent as `grammar`).

    python -m bench.structured_bench [--threads 2] [--tokens 128]
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
    print_table,
    stream_completion,
)
from bench.raw_ceiling import decode_rate
from gateway.engine.llama_backend import JSON_OBJECT_GRAMMAR
from gateway.progress import ProgressBar

PROMPT = "A JSON object describing a cat, with many fields:\n"
N_CTX = 2048


async def rate(server: Server, tokens: int, streams: int, extra: dict[str, object]) -> float:
    """Aggregate decode tok/s of `streams` streams at once (median of 3 runs)."""
    await stream_completion(server, PROMPT, 4, extra)  # warm up
    rates = []
    for _ in range(3):
        results = await asyncio.gather(*(
            stream_completion(server, PROMPT + " " * i, tokens, extra)
            for i in range(streams)))
        rates.append(sum((r.tokens - 1) / (r.duration - r.ttft) for r in results))
    return median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    path = embedded_model_path()
    bar = ProgressBar("structured output")
    rows = []
    raw = decode_rate(path, 1, args.tokens, args.threads, N_CTX)
    bar.update(1 / 6)
    rows.append(["raw llama_decode (B=1, free text)", f"{raw:.1f}", "-", "-", "-", "-"])
    # the grammar lets the model stop when its JSON is complete: no ignore_eos with it
    json_mode = {"ignore_eos": False, "response_format": {"type": "json_object"}}
    with gateway_server(path, args.threads, 4, N_CTX) as gateway:
        free = asyncio.run(rate(gateway, args.tokens, 1, {}))
        bar.update(2 / 6)
        constrained = asyncio.run(rate(gateway, args.tokens, 1, json_mode))
        bar.update(3 / 6)
        free4 = asyncio.run(rate(gateway, args.tokens, 4, {}))
        constrained4 = asyncio.run(rate(gateway, args.tokens, 4, json_mode))
        bar.update(4 / 6)
    rows.append(["gateway", f"{free:.1f}", f"{constrained:.1f}", f"{constrained / free:.0%}",
                 f"{free4:.1f} / {constrained4:.1f}", f"{constrained4 / free4:.0%}"])
    with llama_cpp_python_server(path, args.threads, N_CTX) as peer:
        free = asyncio.run(rate(peer, args.tokens, 1, {}))
        bar.update(5 / 6)
        constrained = asyncio.run(rate(peer, args.tokens, 1,
                                       {"logit_bias": {}, "grammar": JSON_OBJECT_GRAMMAR}))
        bar.update(1.0)
    rows.append(["llama-cpp-python", f"{free:.1f}", f"{constrained:.1f}",
                 f"{constrained / free:.0%}", "-", "-"])
    print_table(
        f"Decode speed with JSON output (the embedded default, {args.threads} threads, "
        f"{args.tokens} tokens, greedy)",
        ["server", "free tok/s", "JSON tok/s", "JSON/free", "4 streams free / JSON tok/s",
         "4 streams JSON/free"],
        rows,
    )


if __name__ == "__main__":
    main()
