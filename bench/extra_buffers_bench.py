"""Issue 8 benchmark: what turning llama.cpp's extra CPU buffer types off costs.

The gateway turns them off by itself when an engine dies by a signal in its warm-up (the AMX fault
in VMs), and `cpu_extra_buffers = false` turns them off for good. This measures the raw llama.cpp
ceiling (bench.raw_ceiling: prefill tok/s of one 512-token prompt, decode tok/s of 1 and 8
sequences) with them on and off, same model, threads and build, side by side in one run. Each
setting runs in a child process, so one that faults is reported as such instead of ending the run.

    python -m bench.extra_buffers_bench [--threads 2] [--tokens 64] [--model PATH]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import embedded_model_path, print_table
from gateway.progress import ProgressBar


def measure(path: Path, extra_buffers: bool, threads: int, tokens: int) -> dict[str, float]:
    from bench.raw_ceiling import decode_rate
    from gateway.engine.llama_backend import LlamaContext, LlamaModel

    model = LlamaModel(path, extra_buffers=extra_buffers)
    ctx = LlamaContext(model, 1024, 1, 512, threads)
    prompt = (model.tokenize("The history of the printing press begins " * 80, True))[:512]
    ctx.batch.clear()
    for pos, token in enumerate(prompt):
        ctx.batch.add(token, pos, 0, pos == len(prompt) - 1)
    start = time.perf_counter()
    ctx.decode()
    prefill = len(prompt) / (time.perf_counter() - start)
    ctx.close()
    model.close()
    return {
        "prefill": prefill,
        "decode1": decode_rate(path, 1, tokens, threads, 512, extra_buffers),
        "decode8": decode_rate(path, 8, tokens, threads, 512, extra_buffers),
    }


def in_child(path: Path, extra_buffers: bool, threads: int, tokens: int) -> dict[str, float] | str:
    command = [sys.executable, "-m", "bench.extra_buffers_bench", "--child",
               "--model", str(path), "--threads", str(threads), "--tokens", str(tokens)]
    if not extra_buffers:
        command.append("--off")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode < 0:
        return f"crashed ({signal.Signals(-done.returncode).name})"
    if done.returncode != 0:
        return f"failed (exit {done.returncode})"
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--off", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    path = args.model or embedded_model_path()
    if args.child:
        print(json.dumps(measure(path, not args.off, args.threads, args.tokens)))
        return
    bar = ProgressBar("extra buffer types on / off")
    results: dict[str, dict[str, float] | str] = {}
    for i, (name, extra_buffers) in enumerate((("on (llama.cpp default)", True), ("off", False))):
        results[name] = in_child(path, extra_buffers, args.threads, args.tokens)
        bar.update((i + 1) / 2)
    rows = []
    on = results["on (llama.cpp default)"]
    for name, result in results.items():
        if isinstance(result, str):
            rows.append([name, result, "-", "-", "-"])
            continue
        ratio = "-"
        if isinstance(on, dict):
            ratio = f"{result['decode1'] / on['decode1']:.2f} / {result['decode8'] / on['decode8']:.2f}"
        rows.append([name, f"{result['prefill']:.0f}", f"{result['decode1']:.1f}",
                     f"{result['decode8']:.1f}", ratio])
    print_table(f"extra CPU buffer types ({path.name}, {args.threads} threads, raw llama.cpp)",
                ["extra buffers", "prefill tok/s", "decode tok/s x1", "decode tok/s x8",
                 "decode vs on (x1 / x8)"], rows)


if __name__ == "__main__":
    main()
