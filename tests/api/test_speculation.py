"""Speculation through the real server, with the OpenAI SDK: an edit of code on the default
model answers the same with proposals fed and with none (`speculative.n_max: 0`, llama-server's
field), and /health and /metrics count the proposed and accepted tokens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import openai

from tests.code_edit import EDIT
from tests.support import model_block, running_server

def test_an_edit_answers_the_same_with_speculation_and_it_is_counted(qwen_path: Path,
                                                                     tmp_path: Path) -> None:
    config = model_block("coder", qwen_path, n_ctx=1024, parallel=1, threads=2, n_min=6, n_max=6)
    with running_server(config, tmp_path / "server") as server:
        client = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)
        messages = [{"role": "user", "content": EDIT}]
        plain = client.chat.completions.create(model="coder", messages=messages, temperature=0,
                                               max_tokens=80,
                                               extra_body={"speculative.n_max": 0})
        health = httpx.get(f"{server.base}/health").json()["models"]["coder"]
        assert health["speculation"]["drafted"] == 0
        fast = client.chat.completions.create(model="coder", messages=messages, temperature=0,
                                              max_tokens=80, user="another")
        assert "order_total" in plain.choices[0].message.content
        assert fast.choices[0].message.content == plain.choices[0].message.content
        assert fast.usage.completion_tokens == plain.usage.completion_tokens
        spec = httpx.get(f"{server.base}/health").json()["models"]["coder"]["speculation"]
        assert spec["drafted"] > 0 and 0 < spec["accepted"] <= spec["drafted"]
        assert spec["acceptance"] == round(spec["accepted"] / spec["drafted"], 3)
        metrics = httpx.get(f"{server.base}/metrics").text
        assert f'gateway_speculation_accepted_tokens_total{{model="coder"}} {spec["accepted"]}.0' in metrics
        bad = httpx.post(f"{server.v1}/chat/completions", json={
            "model": "coder", "messages": messages, "speculative.n_max": -1})
        assert bad.status_code == 400 and "speculative.n_max" in bad.json()["error"]["message"]


def test_a_draft_model_serves_is_planned_and_a_wrong_one_fails_its_load(gemma_path: Path,
                                                                        tmp_path: Path) -> None:
    """Gemma as its own draft (no smaller model with its vocabulary is offline): answers as
    with none, the plan counts the draft beside it, and a draft with another vocabulary fails
    the model's load with the reason in /health."""
    from tests.tiny_model import write_tiny_gguf

    config = model_block("gemma", gemma_path, n_ctx=512, parallel=1, threads=2, kind="draft",
                         draft=str(gemma_path), n_min=2, n_max=2)
    (tmp_path / "plan.toml").write_text(config)
    plan = subprocess.run([sys.executable, "-m", "gateway", "plan", "--config",
                           str(tmp_path / "plan.toml"), "--gpus", "1x4GiB"],
                          capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    assert f"draft model {gemma_path.name}:" in plan.stdout
    with running_server(config, tmp_path / "server") as server:
        client = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)
        asked = {"model": "gemma", "prompt": "The history of the printing press begins",
                 "max_tokens": 24, "temperature": 0}
        plain = client.completions.create(**asked, extra_body={"speculative.n_max": 0})
        fast = client.completions.create(**asked, user="another")
        assert fast.choices[0].text == plain.choices[0].text
        spec = httpx.get(f"{server.base}/health").json()["models"]["gemma"]["speculation"]
        assert spec["drafted"] > 0 and spec["accepted"] > 0.8 * spec["drafted"]
    wrong = model_block("gemma", gemma_path, n_ctx=512, parallel=1, threads=2, kind="draft",
                        draft=str(write_tiny_gguf(tmp_path / "tiny.gguf")))
    with running_server(wrong, tmp_path / "wrong", healthy=False) as server:
        model = httpx.get(f"{server.base}/health").json()["models"]["gemma"]
    assert model["state"] == "failed" and "vocabulary" in model["error"]
