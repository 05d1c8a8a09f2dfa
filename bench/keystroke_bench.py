"""Issue 12 benchmark: keystroke traffic, the gateway against llama-server, side by side in one run.

An editor plugin fires a completion at each pause in typing and abandons the one before (its
socket closes). A run: 20 keystrokes 80 ms apart through a code file, each a non-streamed
request for the text typed so far (`n_predict` 16, as llama.vim's requests but shorter); the last
is read to its end. Two routes, same llama.cpp build, same model for both servers:
`/completion` and `/infill` on the embedded default (Qwen2.5-Coder 0.5B Instruct, which has FIM tokens).

Reported per server: latency of the completion that is kept (send to answer, p50/p95 over the
runs), requests still running or waiting once it is answered (must be 0), and the prompt tokens
the server computed over all runs (its own counters: /health on the gateway, /metrics on
llama-server).

    python -m bench.keystroke_bench [--runs 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import time
from collections.abc import Callable

import httpx

from bench.harness import (
    Server,
    embedded_model_path,
    gateway_server,
    llama_server,
    median,
    percentile,
    print_table,
)
from gateway.progress import ProgressBar

KEYSTROKES, GAP_S, N_PREDICT = 20, 0.08, 16
SOURCE = "\n".join(
    f"def handler_{i}(request, store):\n    item = store.get(request.key_{i})\n"
    f"    if item is None:\n        return None\n    return item.value * {i}\n"
    for i in range(12))
SUFFIX = "\n\nif __name__ == '__main__':\n    main()\n"


def body_for(route: str, typed: str) -> dict[str, object]:
    if route == "/infill":
        return {"input_prefix": typed, "input_suffix": SUFFIX, "input_extra": [], "prompt": "",
                "n_predict": N_PREDICT, "temperature": 0, "cache_prompt": True, "stream": False}
    return {"prompt": typed, "n_predict": N_PREDICT, "temperature": 0, "cache_prompt": True,
            "stream": False}


def send(port: int, route: str, body: dict[str, object]) -> socket.socket:
    payload = json.dumps(body).encode()
    conn = socket.create_connection(("127.0.0.1", port), timeout=120)
    conn.sendall(f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
    return conn


def read_status(conn: socket.socket) -> int:
    data = bytearray()
    while chunk := conn.recv(65536):
        data += chunk
    conn.close()
    return int(bytes(data).split(b" ", 2)[1])


def keystrokes(port: int, route: str, start: int) -> float:
    """One run of typing; the seconds the kept (last) completion took."""
    previous = None
    sent = 0.0
    for k in range(KEYSTROKES):
        sent = time.perf_counter()
        conn = send(port, route, body_for(route, SOURCE[:start + 4 * k]))
        if previous is not None:
            previous.close()
        previous = conn
        if k < KEYSTROKES - 1:
            time.sleep(GAP_S)
    assert previous is not None
    status = read_status(previous)
    if status != 200:
        raise RuntimeError(f"the kept completion failed: HTTP {status}")
    return time.perf_counter() - sent


def gateway_counters(server: Server) -> tuple[int, int]:
    """(requests running or waiting, prompt tokens computed) from /health."""
    root = server.base.removesuffix("/v1")
    state = httpx.get(root + "/health", timeout=10).json()["models"][server.model]
    computed = sum(int(r.get("prompt_tokens_computed", 0)) for r in state["replicas"])
    return state["running"] + state["waiting"], computed


def llama_server_counters(server: Server) -> tuple[int, int]:
    """(slots processing, prompt tokens computed) from /slots and /metrics."""
    root = server.base.removesuffix("/v1")
    slots = httpx.get(root + "/slots", timeout=10).json()
    busy = sum(1 for s in slots if s.get("is_processing"))
    metrics = httpx.get(root + "/metrics", timeout=10).text
    found = re.search(r"^llamacpp:prompt_tokens_total (\S+)$", metrics, re.M)
    return busy, int(float(found.group(1))) if found else -1


def measure(server: Server, route: str, runs: int, counters: Callable[[Server], tuple[int, int]],
            bar: ProgressBar) -> dict[str, float]:
    port = int(server.base.split(":")[2].split("/")[0])
    _, computed_before = counters(server)
    latencies, left = [], []
    for run in range(runs):
        # each run types a different part of the file: a cold start, then keystrokes
        latencies.append(keystrokes(port, route, start=200 + 37 * run))
        time.sleep(0.05)  # the abandoned requests had this long to notice their client left
        left.append(counters(server)[0])
        bar.update((run + 1) / runs)
    _, computed_after = counters(server)
    return {"p50": median(latencies), "p95": percentile(latencies, 95), "left": max(left),
            "computed": computed_after - computed_before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    path = embedded_model_path()  # the shipped default: a code model with FIM tokens
    rows = []
    for route, n_ctx in (("/completion", 4096), ("/infill", 4096)):
        results: dict[str, dict[str, float]] = {}
        with gateway_server(path, args.threads, 4, n_ctx, reserved_slots=1) as server:
            results["gateway"] = measure(server, route, args.runs, gateway_counters,
                                         ProgressBar(f"gateway {route}"))
        with llama_server(path, args.threads, 4, n_ctx, extra=("--metrics",)) as server:
            results["llama-server"] = measure(server, route, args.runs, llama_server_counters,
                                              ProgressBar(f"llama-server {route}"))
        g, p = results["gateway"], results["llama-server"]
        model = "the default model"
        rows += [
            [f"{route} ({model}): kept completion p50 s", f"{g['p50']:.3f}", f"{p['p50']:.3f}",
             f"{g['p50'] / p['p50']:.2f}x"],
            [f"{route}: kept completion p95 s", f"{g['p95']:.3f}", f"{p['p95']:.3f}",
             f"{g['p95'] / p['p95']:.2f}x"],
            [f"{route}: requests left running (max)", f"{g['left']:.0f}", f"{p['left']:.0f}", "must be 0"],
            [f"{route}: prompt tokens computed", f"{g['computed']:.0f}", f"{p['computed']:.0f}",
             f"{g['computed'] / max(p['computed'], 1):.2f}x"],
        ]
    print_table(f"keystrokes: {KEYSTROKES} requests {GAP_S * 1000:.0f} ms apart, each abandoning the "
                f"last; {args.runs} runs; {args.threads} threads, 4 slots",
                ["figure", "gateway", "llama-server", "ratio"], rows)


if __name__ == "__main__":
    main()
