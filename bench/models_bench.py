"""Issue 5 benchmark: several models resident at once, each in its own engine process.

1. Two models decoding at once vs each alone: per-stream and aggregate tok/s.
2. The gateway's added latency per request (HTTP + routing + the engine process hop) against the
   same request on the engine in-process: a 1-token completion, p50 over many requests.

    python -m bench.models_bench [--threads 1] [--tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.harness import Server, _process, free_port, embedded_model_path, median, print_table, stream_completion
from bench.raw_ceiling import PROMPT
from gateway.config import ModelConfig, ModelSource
from gateway.engine.process.decode_check import decodes
from gateway.engine.engine import Engine
from gateway.engine.settings import ContextSettings
from gateway.engine.llama_backend import LlamaModel
from gateway.engine.events import Finished
from gateway.engine.requests import GenerationRequest, SamplingParams
from gateway.progress import ProgressBar
from gateway.fleet.engine_process import engine_settings
from gateway.config import model_entry as model_block


@contextmanager
def two_model_gateway(path: Path, threads: int) -> Iterator[str]:
    port = free_port()
    config = Path(tempfile.mkstemp(suffix=".toml")[1])
    config.write_text(model_block("model-a", path, n_ctx=1024, parallel=2, threads=threads)
                      + model_block("model-b", path, n_ctx=1024, parallel=2, threads=threads))
    cmd = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
    with _process(cmd, f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}/v1"


async def decode_rates(base: str, models: list[str], tokens: int) -> list[float]:
    servers = [Server(m, base, m, {"ignore_eos": True}) for m in models]
    for s in servers:
        await stream_completion(s, PROMPT, 4)
    results = await asyncio.gather(*(stream_completion(s, PROMPT, tokens) for s in servers))
    return [(r.tokens - 1) / (r.duration - r.ttft) for r in results]


async def http_latencies(base: str, n: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(n):
            start = time.perf_counter()
            r = await client.post(base + "/completions", json={
                "model": "model-a", "prompt": "Hi", "max_tokens": 1, "temperature": 0})
            r.raise_for_status()
            out.append(time.perf_counter() - start)
    return out


def in_process_latencies(path: Path, threads: int, n: int) -> list[float]:
    model = LlamaModel(path, extra_buffers=decodes(path, extra_buffers=True)[0])
    config = ModelConfig(id="model", source=ModelSource(path=str(path)),
                         context=ContextSettings(n_ctx=1024, parallel=2, threads=threads))
    engine = Engine(model, engine_settings(config))
    engine.start()
    tokens = model.tokenize("Hi", add_special=True)
    out = []
    try:
        for i in range(n):
            finished: list[object] = []
            start = time.perf_counter()
            engine.submit(GenerationRequest(f"r{i}", tokens, 1, SamplingParams(temperature=0.0)),
                          lambda e: finished.append(e) if isinstance(e, Finished) else None)
            while not finished:
                time.sleep(0.0002)
            out.append(time.perf_counter() - start)
    finally:
        engine.stop()
        model.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    path = embedded_model_path()
    bar = ProgressBar("two models")
    with two_model_gateway(path, args.threads) as base:
        alone_a = asyncio.run(decode_rates(base, ["model-a"], args.tokens))[0]
        bar.update(0.25)
        alone_b = asyncio.run(decode_rates(base, ["model-b"], args.tokens))[0]
        bar.update(0.5)
        together = asyncio.run(decode_rates(base, ["model-a", "model-b"], args.tokens))
        bar.update(0.75)
        http = asyncio.run(http_latencies(base, args.requests))
        bar.update(1.0)
    local = in_process_latencies(path, args.threads, args.requests)
    rows = [
        ["model-a alone", f"{alone_a:.1f}", f"{alone_a:.1f}"],
        ["model-b alone", f"{alone_b:.1f}", f"{alone_b:.1f}"],
        ["both at once", " / ".join(f"{r:.1f}" for r in together), f"{sum(together):.1f}"],
    ]
    print_table(f"Two resident models, one stream each (the embedded default twice, {args.threads} thread(s) "
                f"per engine process, {os.cpu_count()} cores)", ["case", "per-stream tok/s",
                                                                 "aggregate tok/s"], rows)
    p50_http, p50_local = median(http), median(local)
    rows = [["in-process engine", f"{p50_local * 1000:.1f}", "-"],
            ["gateway (HTTP + engine process)", f"{p50_http * 1000:.1f}",
             f"+{(p50_http - p50_local) * 1000:.1f} ms ({p50_http / p50_local:.2f}x)"],
            ]
    print_table(f"Latency of a 1-token completion, p50 of {args.requests} (stdev http "
                f"{statistics.pstdev(http) * 1000:.1f} ms)", ["path", "p50 ms", "added by gateway"], rows)


if __name__ == "__main__":
    main()
