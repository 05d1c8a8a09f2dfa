"""Issue 24 benchmark: speculative decoding (n-gram lookup) side by side in one run, on the
default model: the gateway as shipped (`configs/default.toml`'s speculation: the engine decides
from the step costs it timed), the gateway proposing whatever it costs (`n_min` = `n_max`), the
gateway without speculation, and llama-server with and without `--spec-type ngram-simple` (same
llama.cpp). Single-stream decode tok/s (tokens after the first over the time after it) on a
code edit (rewrite a function with one change), a fill-in-the-middle completion and a free
chat; the 8-stream aggregate (free chats); and greedy identity with the gateway without
speculation (each server's answer against its own without speculation: a batch of several
tokens is computed by other kernels than one token, so where the model's top two tokens are
nearly tied the checked token can differ; on both servers alike).

    python -m bench.spec_bench [--threads 2] [--tokens 160]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.harness import (Server, gateway_server, llama_server, median, print_table,
                           shipped_model, stream_completion)
from gateway.progress import ProgressBar

CODE = '''def load_users(path):
    users = []
    with open(path) as handle:
        for line in handle:
            name, email, age = line.strip().split(",")
            if not email or "@" not in email:
                continue
            users.append({"name": name, "email": email.lower(), "age": int(age)})
    users.sort(key=lambda user: user["name"])
    return users
'''


def chatml(user: str) -> str:
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


SCENARIOS = {
    "code edit": chatml("Add a `min_age` parameter to this function that skips users younger "
                        "than it. Reply with the whole function only.\n\n" + CODE),
    "fill-in-the-middle": ("<|fim_prefix|>" + CODE.replace("    users.sort", "") +
                           "\n\ndef load_admins(path):\n<|fim_suffix|>\n    return admins\n"
                           "<|fim_middle|>"),
    "free chat": chatml("Write a short story about a lighthouse keeper and a storm."),
}
RUNS = 3


def single(server: Server, prompt: str, tokens: int) -> tuple[float, str]:
    """Median decode tok/s over RUNS greedy streams (answers may end early: no ignore_eos)."""
    rates, text = [], ""
    for i in range(RUNS):
        r = asyncio.run(stream_completion(server, f"{prompt}", tokens, {"ignore_eos": False}))
        made = r.completion_tokens or r.tokens
        rates.append((made - 1) / max(r.duration - r.ttft, 1e-9))
        text = r.text
    return median(rates), text


def aggregate(server: Server, streams: int, tokens: int) -> float:
    async def all_of() -> float:
        start = time.perf_counter()
        results = await asyncio.gather(*(stream_completion(
            server, chatml(f"Story {i}: tell me about a {['cat', 'ship', 'tree', 'town'][i % 4]}."),
            tokens, {"ignore_eos": True}) for i in range(streams)))
        return sum(r.completion_tokens or r.tokens for r in results) / (time.perf_counter() - start)
    return asyncio.run(all_of())


def measure(server: Server, tokens: int, label: str) -> dict[str, object]:
    bar = ProgressBar(label)
    out: dict[str, object] = {}
    for i, (name, prompt) in enumerate(SCENARIOS.items()):
        out[name] = single(server, prompt, tokens)
        bar.update((i + 1) / (len(SCENARIOS) + 1))
    out["aggregate"] = aggregate(server, 8, 64)
    bar.update(1.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=160)
    args = parser.parse_args()
    path = shipped_model().path
    n_ctx, parallel = 4096, 8  # 8 streams for the aggregate
    results = {}
    configs = {"gateway (shipped)": {}, "gateway, always proposing": {"n_min": 8, "n_max": 8},
               "gateway, no speculation": {"kind": "none"}}
    for name, fields in configs.items():
        with gateway_server(path, args.threads, parallel, n_ctx, "gateway", **fields) as server:
            results[name] = measure(server, args.tokens, name)
    for name, flags in (("llama-server ngram-simple", ("--spec-type", "ngram-simple")),
                        ("llama-server", ())):
        with llama_server(path, args.threads, parallel, n_ctx, flags) as server:
            results[name] = measure(server, args.tokens, name)
    base, peer = results["gateway, no speculation"], results["llama-server"]
    rows = []
    for name, r in results.items():
        row = [name]
        own = base if name.startswith("gateway") else peer  # each against itself, no speculation
        for scenario in SCENARIOS:
            rate, text = r[scenario]  # type: ignore[misc]
            same = ", same" if text == own[scenario][1] else ", DIFFERENT"  # type: ignore[index]
            row.append(f"{rate:.1f} ({rate / base[scenario][0]:.2f}x{same})")  # type: ignore[index]
        row.append(f"{r['aggregate']:.1f} ({r['aggregate'] / base['aggregate']:.2f}x)")  # type: ignore[operator]
        rows.append(row)
    print_table(f"speculation on the default model ({path.name}, {args.threads} threads; "
                "decode tok/s, x the gateway without speculation; greedy text vs the same "
                "server without speculation)",
                ["server", *SCENARIOS, "8 streams aggregate"], rows)
    print(f"(llama-server without speculation vs the gateway without: "
          f"{', '.join(f'{s} {peer[s][0] / base[s][0]:.2f}x' for s in SCENARIOS)})")  # type: ignore[index]


if __name__ == "__main__":
    main()
