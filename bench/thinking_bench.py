"""Issue 22 benchmark: a 6-turn conversation on a thinking template, the gateway against
llama-server side by side in one run, with the ideal (only each turn's new message computed).

The template is QwQ's shape (ChatML; the generation prompt opens `<think>`; history drops each
answer's thinking, as most thinking templates do) on the shipped model, for both servers
(`chat_template_file` / `--jinja --chat-template-file`). No thinking model can be fetched here, so
each answer is held to a thinking-then-answer shape by the same GBNF on both servers; the client
sends each answer back as OpenAI SDK users do (the reply only) and pauses between turns, as a
user reads. The gateway runs as shipped (`prefill_next_turn` on) and with it off, to show what it
buys; llama-server runs with the same slots and context.

    python -m bench.thinking_bench [--turns 6] [--pause 2.0] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx

from bench.harness import Server, gateway_server, llama_server, median, print_table, shipped_model
from gateway.config import load_config
from gateway.progress import ProgressBar

TEMPLATE = Path(__file__).parent / "templates" / "qwq_style.jinja"
GRAMMAR = 'root ::= [^<]{80,160} "\\n</think>\\n\\n" [^<]{40,100}'
QUESTIONS = ["How do I reverse a list in Python?", "And a string?", "What about a dict's keys?",
             "How do I sort it by value?", "Can I do it in one line?", "Which is fastest?"]
SYSTEM = "You are a careful assistant. Think before you answer, then answer briefly."


def turn(server: Server, messages: list[dict[str, str]]) -> dict[str, float | str]:
    """One streamed turn: TTFT (any text, thinking included), the reply, and the usage."""
    body = {"model": server.model, "messages": messages, "max_tokens": 120, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}, "grammar": GRAMMAR,
            "prompt_cache_key": "bench-thinking"}
    start, ttft, content, usage, timings = time.perf_counter(), None, "", {}, {}
    with httpx.stream("POST", f"{server.base}/chat/completions", json=body, timeout=300) as reply:
        reply.raise_for_status()
        for line in reply.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            usage = chunk.get("usage") or usage
            timings = chunk.get("timings") or timings
            for choice in chunk.get("choices", []):
                delta = choice.get("delta", {})
                text = (delta.get("content") or "") + (delta.get("reasoning_content") or "")
                if text and ttft is None:
                    ttft = time.perf_counter() - start
                content += delta.get("content") or ""
    prompt = usage.get("prompt_tokens") or timings.get("prompt_n", 0) + timings.get("cache_n", 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is None:
        cached = timings.get("cache_n", 0)
    return {"ttft": ttft or time.perf_counter() - start, "prompt": prompt, "cached": cached,
            "reply": content.split("</think>")[-1].strip()}


def conversation(server: Server, turns: int, pause: float, bar: ProgressBar
                 ) -> list[dict[str, float | str]]:
    messages = [{"role": "system", "content": SYSTEM}]
    results = []
    for i in range(turns):
        messages.append({"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]})
        result = turn(server, messages)
        results.append(result)
        messages.append({"role": "assistant", "content": str(result["reply"])})
        bar.update((i + 1) / turns)
        time.sleep(pause)  # the user reads the answer
    return results


def new_tokens(server: Server, questions: list[str]) -> list[int]:
    """The least each turn must compute: its new user message, and the template's markup after
    it (the end of the turn, the assistant's header, the opened think block)."""
    root = server.base.removesuffix("/v1")

    def count(text: str) -> int:
        return len(httpx.post(f"{root}/tokenize", json={
            "content": text, "add_special": False, "parse_special": True}, timeout=30
        ).json()["tokens"])

    markup = count("<|im_end|>\n<|im_start|>assistant\n<think>\n")
    return [count(q) + markup for q in questions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between turns")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config", type=Path, default=Path("configs/default.toml"))
    args = parser.parse_args()
    model = shipped_model(args.config)
    context = load_config(args.config).models[0].context
    runs: dict[str, list[dict[str, float | str]]] = {}
    settings = {"chat_template_file": str(TEMPLATE), "prefill_chunk": context.prefill_chunk}
    for name, prefill in (("gateway", True), ("gateway, no next-turn prefill", False)):
        with gateway_server(model.path, args.threads, context.parallel, context.n_ctx, name,
                            prefill_next_turn=prefill, **settings) as server:
            runs[name] = conversation(server, args.turns, args.pause, ProgressBar(name))
            questions = new_tokens(server, [QUESTIONS[i % len(QUESTIONS)] for i in range(args.turns)])
    flags = ("--jinja", "--chat-template-file", str(TEMPLATE))
    with llama_server(model.path, args.threads, context.parallel, context.n_ctx, flags) as server:
        runs["llama-server"] = conversation(server, args.turns, args.pause,
                                            ProgressBar("llama-server"))
    names = list(runs)
    rows = []
    for i in range(args.turns):
        row = [str(i + 1)]
        for name in names:
            r = runs[name][i]
            row.append(f"{r['ttft']:.3f} s, {int(r['prompt']) - int(r['cached'])} computed "
                       f"of {r['prompt']}")
        row.append(f"{questions[i]} computed" if i else "all")
        rows.append(row)
    later = {name: median([float(r["ttft"]) for r in runs[name][1:]]) for name in names}
    rows.append(["TTFT p50, turns 2+", *[f"{later[n]:.3f} s" for n in names], "-"])
    rows.append(["vs llama-server", *[f"{later[n] / later['llama-server']:.2f}x" for n in names],
                 "-"])
    print_table(f"6-turn thinking conversation ({model.id}, QwQ-style template, "
                f"{args.pause:g} s between turns, {args.threads} threads)",
                ["turn", *names, "ideal (new message)"], rows)


if __name__ == "__main__":
    main()
