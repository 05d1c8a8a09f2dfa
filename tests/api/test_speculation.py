"""Speculation through the real server, with the OpenAI SDK: an edit of code on the default
model answers the same with proposals fed and with none (`speculative.n_max: 0`, llama-server's
field), and /health and /metrics count the proposed and accepted tokens."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai

from tests.support import model_block, running_server

CODE = '''def total_price(items, tax_rate):
    subtotal = 0
    for item in items:
        subtotal += item.price * item.quantity
    tax = subtotal * tax_rate
    return subtotal + tax
'''


def test_an_edit_answers_the_same_with_speculation_and_it_is_counted(qwen_path: Path,
                                                                     tmp_path: Path) -> None:
    config = model_block("coder", qwen_path, n_ctx=1024, parallel=1, threads=2, n_min=6, n_max=6)
    with running_server(config, tmp_path / "server") as server:
        client = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)
        messages = [{"role": "user", "content": "Rename the function total_price to order_total "
                     "and change nothing else. Reply with the code only.\n\n" + CODE}]
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
