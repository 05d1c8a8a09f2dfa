"""Issue 19 check: greedy output through the gateway is llama-server's, token for token.

The shipped gateway (`configs/default.toml`: Qwen2.5-Coder 0.5B Instruct, its template from the
GGUF) and llama-server on the same GGUF with `--jinja` (its own reading of the same template), same
llama.cpp; each prompt greedy on both, one after another: chat (`/v1/chat/completions`),
`/completion` and `/infill`. An `/infill` answer, which the gateway ends where the middle ends, is
compared with llama-server's cut at that same place (the same `hole_end` rule applied to its
text); a row says whether the texts are equal. Exits 1 when one differs. Every prompt is
computed afresh (`cache_prompt: false` for llama-server): a prefix its slot kept from the last
request is computed in other batch shapes, and at a near-tie that alone changes a greedy answer
(seen here: llama-server's own answer to the third chat changes after the first two).

    python -m bench.greedy_match [--threads 2]
"""

from __future__ import annotations

import argparse
import sys

import httpx

from bench.harness import Server, llama_server, print_table, shipped_gateway, shipped_model
from gateway.engine.hole_end import HoleEnd, hole_around
from gateway.progress import ProgressBar

CHATS = ["What is the capital of France?", "Write a haiku about GPUs",
         "Write a Python function that reverses a string.",
         "Explain in two sentences what a hash map is."]
COMPLETIONS = ["def fibonacci(n):\n", "# A shell one-liner that counts the lines of every .py file\n",
               "The three laws of thermodynamics are"]
INFILLS = [("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"),
           ("def is_even(n):\n    ", "\n\nprint(is_even(4))\n"),
           ("import json\n\ndef load(path):\n    with open(path) as f:\n        ", "\n"),
           ("class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n"
            "        ", "\n\n    def pop(self):\n        return self.items.pop()\n")]
TOKENS = 64


def chat(server: Server, question: str) -> str:
    reply = httpx.post(server.base + "/chat/completions", timeout=300, json={
        "model": server.model, "messages": [{"role": "user", "content": question}],
        "temperature": 0, "max_tokens": TOKENS, "cache_prompt": False})
    reply.raise_for_status()
    return str(reply.json()["choices"][0]["message"]["content"])


def native(server: Server, route: str, body: dict[str, object]) -> str:
    reply = httpx.post(server.base.removesuffix("/v1") + route, timeout=300,
                       json={**body, "temperature": 0, "top_k": 1, "n_predict": TOKENS,
                             "cache_prompt": False})
    reply.raise_for_status()
    return str(reply.json()["content"])


def answers(server: Server, name: str) -> list[str]:
    bar = ProgressBar(name)
    out: list[str] = []
    total = len(CHATS) + len(COMPLETIONS) + len(INFILLS)
    for question in CHATS:
        out.append(chat(server, question))
        bar.update(len(out) / total)
    for prompt in COMPLETIONS:
        out.append(native(server, "/completion", {"prompt": prompt}))
        bar.update(len(out) / total)
    for prefix, suffix in INFILLS:
        out.append(native(server, "/infill", {"input_prefix": prefix, "input_suffix": suffix,
                                              "input_extra": []}))
        bar.update(len(out) / total)
    return out


def cut_at_hole(prefix: str, suffix: str, text: str) -> str:
    end = HoleEnd(hole_around(prefix, suffix))
    return end.push(text) + end.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = shipped_model()
    with shipped_gateway() as server:
        ours = answers(server, "gateway")
    with llama_server(model.path, args.threads, 1, 4096) as server:
        theirs = answers(server, "llama-server --jinja")
    labels = ([("chat", q) for q in CHATS] + [("/completion", p) for p in COMPLETIONS]
              + [("/infill", p) for p, _ in INFILLS])
    rows, differ = [], 0
    for i, ((route, prompt), mine, peer) in enumerate(zip(labels, ours, theirs)):
        compared = peer
        if route == "/infill":
            prefix, suffix = INFILLS[i - len(CHATS) - len(COMPLETIONS)]
            compared = cut_at_hole(prefix, suffix, peer)
        same = mine == compared
        differ += not same
        rows.append([route, repr(prompt[:40]), "yes" if same else "NO", repr(mine[:48]),
                     repr(peer[:48])])
    print_table(f"greedy output, gateway vs llama-server --jinja ({model.id}, {TOKENS} tokens)",
                ["route", "prompt", "equal", "gateway", "llama-server (uncut)"], rows)
    print(f"\n{len(rows) - differ} of {len(rows)} equal")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
