"""Issue 19 benchmark: fill-in-the-middle on real code, and where each server stops.

The cases are cut from this repository's own source: a function's body (after its docstring, 1 to 8
lines) is removed, and the server is asked for it through `/infill` as an editor asks (the 30 lines
before as `input_prefix`, with the cursor at the body's indentation, the 10 lines after as
`input_suffix`, greedy, `n_predict` 128 as llama.vscode sends). Per server: the share of answers
whose first line is the removed code's first line, the share that are the whole removed body, the
tokens generated and how many of them went past the body's own length, and the time per request.
Servers, one after another on the shipped model, each started afresh: the gateway (`configs/default.toml`: it ends an
answer where the middle ends), llama-server as llama.vscode calls it, and llama-server with
`n_indent` set to the cursor's indentation (what llama.vim sends; llama-server then stops at a line
indented less).

    python -m bench.fim_bench [--cases 24] [--n-predict 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import ast
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.harness import Server, llama_server, print_table, shipped_gateway, shipped_model
from gateway.progress import ProgressBar

SOURCE = Path(__file__).resolve().parents[1] / "gateway"
PREFIX_LINES, SUFFIX_LINES, MAX_BODY_LINES = 30, 10, 8


@dataclass(frozen=True)
class Case:
    where: str  # file:line of the body
    prefix: str  # ends at the body's indentation: the cursor
    middle: str  # the removed body, from its first character
    suffix: str  # from the line break that ended the body

    @property
    def indent(self) -> int:
        last = self.prefix.rsplit("\n", 1)[-1]
        return len(last) - len(last.lstrip())


def cases(count: int) -> list[Case]:
    """`count` bodies spread over the package, in a fixed order (the same on every run)."""
    found: list[Case] = []
    for path in sorted(SOURCE.rglob("*.py")):
        text = path.read_text()
        lines = text.split("\n")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                body = body[1:]  # keep the docstring: it says what the body should do
            if not body:
                continue
            first, last = body[0].lineno - 1, (body[-1].end_lineno or body[-1].lineno) - 1
            if last - first + 1 > MAX_BODY_LINES:
                continue
            indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
            prefix = "\n".join(lines[max(0, first - PREFIX_LINES):first]) + "\n" + indent
            middle = "\n".join(lines[first:last + 1])[len(indent):]
            suffix = "\n" + "\n".join(lines[last + 1:last + 1 + SUFFIX_LINES])
            found.append(Case(f"{path.relative_to(SOURCE.parent)}:{first + 1}", prefix, middle,
                              suffix))
    found.sort(key=lambda c: c.where)
    step = max(1, len(found) // count)
    return found[::step][:count]


@dataclass
class Outcome:
    text: str
    predicted: int
    seconds: float


def infill(server: Server, case: Case, n_predict: int, n_indent: bool) -> Outcome:
    body: dict[str, object] = {"input_prefix": case.prefix, "input_suffix": case.suffix,
                               "input_extra": [], "n_predict": n_predict, "temperature": 0,
                               "top_k": 1, "cache_prompt": True}
    if n_indent:
        body["n_indent"] = case.indent
    start = time.perf_counter()
    reply = httpx.post(server.base.removesuffix("/v1") + "/infill", json=body, timeout=300)
    reply.raise_for_status()
    data = reply.json()
    return Outcome(data["content"], int(data["tokens_predicted"]), time.perf_counter() - start)


def first_line(text: str) -> str:
    return text.strip("\n").split("\n", 1)[0].strip()


def measure(server: Server, name: str, all_cases: list[Case], n_predict: int, n_indent: bool,
            middle_tokens: list[int]) -> dict[str, float]:
    bar = ProgressBar(name)
    outcomes = []
    for i, case in enumerate(all_cases):
        outcomes.append(infill(server, case, n_predict, n_indent))
        bar.update((i + 1) / len(all_cases))
    n = len(all_cases)
    return {
        "first_line": sum(first_line(o.text) == first_line(c.middle)
                          for o, c in zip(outcomes, all_cases)) / n,
        "whole": sum(o.text.strip() == c.middle.strip() for o, c in zip(outcomes, all_cases)) / n,
        "tokens": sum(o.predicted for o in outcomes) / n,
        "past": sum(max(0, o.predicted - m) for o, m in zip(outcomes, middle_tokens)) / n,
        "at_limit": sum(o.predicted >= n_predict for o in outcomes) / n,
        "seconds": sum(o.seconds for o in outcomes) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--n-predict", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = shipped_model()
    all_cases = cases(args.cases)
    results: dict[str, dict[str, float]] = {}
    with shipped_gateway() as server:
        tokenize = server.base.removesuffix("/v1") + "/tokenize"
        middle_tokens = [len(httpx.post(tokenize, json={"content": c.middle}).json()["tokens"])
                         for c in all_cases]
        results["gateway"] = measure(server, "gateway", all_cases, args.n_predict, False,
                                     middle_tokens)
    for name, n_indent in (("llama-server", False), ("llama-server n_indent", True)):
        # a fresh server each: the second must not find the first's prompts cached
        with llama_server(model.path, args.threads, 4, 4096) as server:
            results[name] = measure(server, name, all_cases, args.n_predict, n_indent,
                                    middle_tokens)
    names = list(results)
    g, p = results["gateway"], results["llama-server"]
    rows = [
        ["first line is the removed code's", *(f"{results[s]['first_line']:.0%}" for s in names),
         f"{g['first_line'] - p['first_line']:+.0%}"],
        ["whole body is the removed code", *(f"{results[s]['whole']:.0%}" for s in names),
         f"{g['whole'] - p['whole']:+.0%}"],
        ["tokens generated (mean)", *(f"{results[s]['tokens']:.1f}" for s in names),
         f"{g['tokens'] / p['tokens']:.2f}x"],
        ["tokens past the body's length (mean)", *(f"{results[s]['past']:.1f}" for s in names),
         f"{g['past'] / p['past']:.2f}x" if p["past"] else "-"],
        [f"answers that ran to n_predict ({args.n_predict})",
         *(f"{results[s]['at_limit']:.0%}" for s in names), "-"],
        ["seconds per request (mean)", *(f"{results[s]['seconds']:.2f}" for s in names),
         f"{g['seconds'] / p['seconds']:.2f}x"],
    ]
    print_table(f"fill-in-the-middle on {len(all_cases)} bodies cut from gateway/ "
                f"({model.id}, greedy, n_predict {args.n_predict}, {args.threads} threads)",
                ["figure", *names, "gateway vs llama-server"], rows)


if __name__ == "__main__":
    main()
