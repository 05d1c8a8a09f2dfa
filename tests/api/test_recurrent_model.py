"""A recurrent model (a tiny Mamba the test writes) through the real server: llama.cpp cannot
cut its state back to a position, so the engine runs it without speculation (said in /health)
and never aborts its steps; its answers are the ones it gives with speculation off, and a
returning conversation (whose state cannot be cut to the shared prefix) is recomputed, giving
the answer a fresh server gives."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support import model_block, running_server
from tests.tiny_model import write_tiny_mamba

PROMPTS = ["abc abc abc abc abc abc", "hello hello hello hello", "a b c d a b c d a b c d",
           "the cat the cat the dog the cat the", "x y z x y z x y w x y z"]


def answers(model: Path, workdir: Path, speculation: str, prompts: list[str]
            ) -> tuple[list[str], dict]:
    config = (model_block("mamba", model, n_ctx=1024, parallel=2, threads=2)
              + f"[models.speculation]\n{speculation}\n")
    with running_server(config, workdir) as server:
        texts = []
        for prompt in prompts:
            r = httpx.post(server.v1 + "/completions", timeout=120, json={
                "model": "mamba", "prompt": prompt, "max_tokens": 300, "temperature": 0,
                "ignore_eos": True})
            assert r.status_code == 200, r.text
            texts.append(r.json()["choices"][0]["text"])
        return texts, httpx.get(server.base + "/health").json()["models"]["mamba"]["speculation"]


def test_a_recurrent_model_runs_without_speculation_and_answers_as_without_it(
        tmp_path: Path) -> None:
    model = write_tiny_mamba(tmp_path / "mamba.gguf")
    # n_min 4: every proposal would be fed (with it fed, 3 of ~1,000 were rejected here, and the
    # answers went on from the rejected tokens' state)
    asked, said = answers(model, tmp_path / "asked", "n_min = 4", PROMPTS)
    assert said["drafted"] == 0 and "recurrent" in (said["off"] or "")
    plain, off = answers(model, tmp_path / "plain", 'kind = "none"', PROMPTS)
    assert off["off"] is None and asked == plain


def test_a_returning_conversation_on_a_recurrent_model_is_recomputed_right(tmp_path: Path) -> None:
    model = write_tiny_mamba(tmp_path / "mamba.gguf")
    first, longer = "abc abc abc def", "abc abc abc def ghi ghi"
    both, _ = answers(model, tmp_path / "both", 'kind = "none"', [first, longer])
    fresh, _ = answers(model, tmp_path / "fresh", 'kind = "none"', [longer])
    assert both[1] == fresh[0]
