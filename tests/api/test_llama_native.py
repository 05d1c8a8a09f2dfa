"""llama.cpp's own routes through the real server: /infill (as llama.vscode and llama.vim send it),
/completion, /tokenize, /detokenize, /props; each on the model a request names or the first one.
Clients: httpx and curl."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.engine.llama_backend import LlamaModel
from gateway.frontend.prompt.infill import ExtraText, FimTokens, infill_tokens
from tests.support import RunningServer, model_block, running_server
from tests.tiny_model import write_tiny_gguf

GEMMA, CODER = "gemma-3-270m", "tiny-coder"
PREFIX, SUFFIX = "def add(a, b):\n    ret", "\n\nprint(add(1, 2))\n"
EXTRA = [{"filename": "util.py", "text": "def sub(a, b):\n    return a - b\n"}]


@pytest.fixture(scope="module")
def coder_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("coder") / "coder.gguf", repo_fim=True)


@pytest.fixture(scope="module")
def two(gemma_path: Path, coder_path: Path, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[RunningServer]:
    """Gemma first (the default for requests that name no model), the tiny coder second."""
    config = (model_block(GEMMA, gemma_path, n_ctx=2048, parallel=2, chat_template="gemma",
                          threads=2)
              + model_block(CODER, coder_path, n_ctx=2048, parallel=2, threads=1))
    with running_server(config, tmp_path_factory.mktemp("native")) as server:
        yield server


def post(server: RunningServer, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(server.base + path, json=body, timeout=120)


def infill_body(**extra: object) -> dict[str, object]:
    """What llama.vscode sends (its fields, its defaults)."""
    return {"model": CODER, "input_prefix": PREFIX, "input_suffix": SUFFIX, "input_extra": EXTRA,
            "prompt": "urn", "n_predict": 8, "top_k": 40, "top_p": 0.99, "stream": False,
            "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
            "t_max_prompt_ms": 5000, "t_max_predict_ms": 5000, "n_indent": 4,
            **extra}


def expected_prompt(coder_path: Path) -> list[int]:
    vocab = LlamaModel(coder_path, vocab_only=True)
    assert vocab.fim_tokens is not None
    pre, suf, mid = vocab.fim_tokens
    return infill_tokens(vocab, FimTokens(pre, suf, mid, vocab.fim_rep, vocab.fim_sep),
                         vocab.bos_token, PREFIX, SUFFIX,
                         [ExtraText(c["filename"], c["text"]) for c in EXTRA], "urn", 2048, 8)


def test_infill_answers_in_llama_cpps_shape_from_llama_cpps_prompt(two: RunningServer,
                                                                   coder_path: Path) -> None:
    r = post(two, "/infill", infill_body(temperature=0, ignore_eos=True))
    assert r.status_code == 200, r.text
    body = r.json()
    expected = expected_prompt(coder_path)
    assert body["tokens_evaluated"] == len(expected)
    assert body["tokens_predicted"] == 8 and body["stop"] is True and body["stop_type"] == "limit"
    assert body["model"] == CODER
    timings = body["timings"]
    assert timings["prompt_n"] + timings["cache_n"] == len(expected) and timings["predicted_n"] == 8
    # the same tokens sent as a prompt give the same text: the layout is what the model saw
    same = post(two, "/completion", {"model": CODER, "prompt": expected, "n_predict": 8,
                                     "temperature": 0, "ignore_eos": True}).json()
    assert same["content"] == body["content"]
    assert same["timings"]["cache_n"] >= len(expected) - 1  # and its KV was reused


def test_streamed_infill_sends_pieces_then_the_final_result_without_done(two: RunningServer) -> None:
    out = subprocess.run(
        ["curl", "-sN", "-H", "Content-Type: application/json", "-d",
         json.dumps(infill_body(stream=True, n_predict=6, ignore_eos=True, temperature=0)),
         two.base + "/infill"], capture_output=True, text=True, timeout=120, check=True).stdout
    frames = [json.loads(line[6:]) for line in out.split("\n") if line.startswith("data: ")]
    assert "[DONE]" not in out
    pieces, last = frames[:-1], frames[-1]
    assert pieces and all(f["stop"] is False and "content" in f for f in pieces)
    assert last["stop"] is True and last["tokens_predicted"] == 6 and "timings" in last
    whole = post(two, "/infill", infill_body(n_predict=6, ignore_eos=True, temperature=0)).json()
    assert "".join(f["content"] for f in pieces) == whole["content"]


def test_infill_needs_fim_tokens_and_its_fields(two: RunningServer) -> None:
    r = post(two, "/infill", infill_body(model=GEMMA))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "model" and "fill-in-the-middle" in error["message"]
    body = infill_body()
    del body["input_prefix"]
    r = post(two, "/infill", body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "input_prefix"
    r = post(two, "/infill", infill_body(input_extra=[{"filename": "x.py"}]))
    assert r.status_code == 400 and r.json()["error"]["param"] == "input_extra[0].text"
    r = post(two, "/infill", infill_body(n_predict=-5))
    assert r.status_code == 400 and r.json()["error"]["param"] == "n_predict"


def test_n_predict_0_only_fills_the_cache_for_the_next_request(two: RunningServer) -> None:
    """llama.vscode warms the cache this way: the prompt's KV, no text; the next request that
    shares the prefix computes only what is new."""
    warm = post(two, "/infill", infill_body(n_predict=0, input_prefix=PREFIX + "# warm\n")).json()
    assert warm["content"] == "" and warm["tokens_predicted"] == 0
    after = post(two, "/infill", infill_body(input_prefix=PREFIX + "# warm\n", n_predict=2)).json()
    assert after["timings"]["cache_n"] >= warm["tokens_evaluated"] - 1


def test_completion_honours_the_named_model_or_the_first(two: RunningServer) -> None:
    default = post(two, "/completion", {"prompt": "Once upon a time", "n_predict": 3,
                                        "ignore_eos": True}).json()
    named = post(two, "/completion", {"prompt": "Once upon a time", "n_predict": 3,
                                      "ignore_eos": True, "model": CODER}).json()
    assert default["model"] == GEMMA and named["model"] == CODER
    assert default["tokens_predicted"] == named["tokens_predicted"] == 3
    assert post(two, "/completion", {"prompt": "x", "model": "nope"}).status_code == 404


def test_time_limits_end_a_completion_as_llama_cpp_does(two: RunningServer) -> None:
    prompt = "Here is a list of twenty fruits, one per line:\n1."
    free = post(two, "/completion", {"prompt": prompt, "n_predict": 60, "temperature": 0,
                                     "ignore_eos": True}).json()
    first_line_end = free["content"].find("\n")
    assert first_line_end >= 0, free["content"]  # the test needs an answer of several lines
    limited = post(two, "/completion", {"prompt": prompt, "n_predict": 60, "temperature": 0,
                                        "ignore_eos": True, "t_max_predict_ms": 1}).json()
    # out of time at once: it ends where the first line does, with the text so far
    assert limited["stop_type"] == "limit" and limited["tokens_predicted"] < 60
    assert free["content"].startswith(limited["content"])
    assert "\n" in limited["content"] and limited["content"].count("\n") <= 2
    # no first token within the prompt's time: nothing, but what was computed stays cached
    long_prompt = "Count with me: " + ", ".join(str(i) for i in range(250))
    late = post(two, "/completion", {"prompt": long_prompt, "n_predict": 4,
                                     "t_max_prompt_ms": 300}).json()
    assert late["content"] == "" and late["tokens_predicted"] == 0 and late["stop_type"] == "limit"
    again = post(two, "/completion", {"prompt": long_prompt, "n_predict": 1}).json()
    assert again["timings"]["cache_n"] > 0


def test_tokenize_and_detokenize_round_trip(two: RunningServer) -> None:
    text = "Hello, wörld <start_of_turn>"
    plain = post(two, "/tokenize", {"content": text}).json()["tokens"]
    with_bos = post(two, "/tokenize", {"content": text, "add_special": True}).json()["tokens"]
    assert with_bos[1:] == plain and len(with_bos) == len(plain) + 1
    as_text = post(two, "/tokenize", {"content": text, "parse_special": False}).json()["tokens"]
    assert len(as_text) > len(plain)  # the marker spelled out, not one special token
    pieces = post(two, "/tokenize", {"content": text, "with_pieces": True}).json()["tokens"]
    assert [p["id"] for p in pieces] == plain
    assert post(two, "/detokenize", {"tokens": plain}).json()["content"] == text
    coder = post(two, "/tokenize", {"content": "abc", "model": CODER}).json()["tokens"]
    assert coder != post(two, "/tokenize", {"content": "abc"}).json()["tokens"]
    r = post(two, "/detokenize", {"tokens": [10**9]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "tokens[0]"


def test_props_tell_the_model_its_context_and_what_fim_it_has(two: RunningServer) -> None:
    gemma = httpx.get(two.base + "/props", timeout=30).json()
    coder = httpx.get(two.base + "/props", params={"model": CODER}, timeout=30).json()
    assert gemma["model_alias"] == GEMMA and coder["model_alias"] == CODER
    assert gemma["default_generation_settings"]["n_ctx"] == 2048
    assert gemma["total_slots"] == 2
    assert gemma["infill"] == {"supported": False, "repo_level": False}
    assert coder["infill"] == {"supported": True, "repo_level": True}
    assert httpx.get(two.base + "/props", params={"model": "nope"}, timeout=30).status_code == 404
