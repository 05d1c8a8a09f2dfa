"""The KV cache's layout chosen per model, end to end: the engine runs it and `/health` says how
it holds its KV; `gateway plan` counts KV bytes in the cache's types, so a model whose f16 KV does
not fit a card fits it at q4_0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from tests.support import model_block, running_server
from tests.tiny_model import write_tiny_gguf


def test_a_quantized_unified_kv_serves_and_health_says_so(gemma_path: Path,
                                                          tmp_path: Path) -> None:
    config = model_block("gemma", gemma_path, n_ctx=512, parallel=2, threads=1,
                         cache_type_k="q8_0", cache_type_v="q8_0", kv_unified=True)
    with running_server(config, tmp_path / "server") as server:
        client = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)
        answer = client.completions.create(model="gemma", prompt="The sky is", max_tokens=8,
                                           temperature=0, extra_body={"ignore_eos": True})
        assert answer.usage.completion_tokens == 8 and answer.choices[0].text
        two = client.completions.create(model="gemma", prompt="The sky is", max_tokens=6, n=2,
                                        temperature=0, extra_body={"ignore_eos": True})
        assert two.choices[0].text == two.choices[1].text  # the copy answers as the original
        assert two.usage.completion_tokens == 12
        replica = httpx.get(f"{server.base}/health").json()["models"]["gemma"]["replicas"][0]
        assert replica["kv"].startswith("K q8_0, V q8_0, flash attention auto, one pool")


def test_a_cache_type_the_model_cannot_hold_fails_its_load_saying_why(tmp_path: Path) -> None:
    """The tiny model's heads are 16 wide: too narrow for q8_0's blocks of 32."""
    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    config = model_block("tiny", path, n_ctx=512, parallel=1, threads=1, cache_type_k="q8_0")
    with running_server(config, tmp_path / "server", healthy=False) as server:
        model = httpx.get(f"{server.base}/health").json()["models"]["tiny"]
    assert model["state"] == "failed"
    assert "multiple of 32" in model["error"] and "K q8_0" in model["error"]


def test_the_plan_counts_the_kv_in_its_types(gemma_path: Path, tmp_path: Path) -> None:
    def plan(kind: str) -> subprocess.CompletedProcess[str]:
        config = tmp_path / f"{kind}.toml"
        config.write_text(model_block("gemma", gemma_path, n_ctx=32768, parallel=4,
                                      cache_type_k=kind, cache_type_v=kind))
        return subprocess.run([sys.executable, "-m", "gateway", "plan", "--config", str(config),
                               "--gpus", "1x1.8GiB"], capture_output=True, text=True, timeout=60)

    f16, q4 = plan("f16"), plan("q4_0")
    assert f16.returncode != 0 and "do not fit" in f16.stderr  # 2.25 GiB of KV alone
    assert q4.returncode == 0, q4.stderr
    assert "q4_0/q4_0: 0.63 GiB for 4 x 32768 tokens (5.1 KiB/token)" in q4.stdout


def test_auto_context_and_slots_are_fitted_and_explained(tmp_path: Path) -> None:
    """On a machine without GPUs the room is a quarter of the host's RAM: the tiny model's slots
    go to their ceiling and its context to what it was trained on; /health says so, and the
    engine runs them."""
    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    config = model_block("tiny", path, n_ctx="auto", parallel="auto", parallel_max=3,
                         threads=1)
    with running_server(config, tmp_path / "server") as server:
        model = httpx.get(f"{server.base}/health").json()["models"]["tiny"]
        assert model["context"]["n_ctx"] == 2048 and model["context"]["parallel"] == 3
        assert "the context it was trained on" in model["context"]["fit"]
        props = httpx.get(f"{server.base}/props").json()
        assert props["total_slots"] == 3 and props["default_generation_settings"]["n_ctx"] == 2048


def test_the_plan_fits_auto_sizes_to_a_declared_card(gemma_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "auto.toml"
    config.write_text(model_block("gemma", gemma_path, n_ctx="auto", parallel="auto",
                                  cache_type_k="q8_0", cache_type_v="q8_0"))
    out = subprocess.run([sys.executable, "-m", "gateway", "plan", "--config", str(config),
                          "--gpus", "1x2GiB"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "fitted: 8 slots x" in out.stdout and "q8_0/q8_0" in out.stdout
    small = subprocess.run([sys.executable, "-m", "gateway", "plan", "--config", str(config),
                            "--gpus", "1x0.5GiB"], capture_output=True, text=True, timeout=60)
    assert small.returncode != 0 and "does not fit itself" in small.stderr


def test_one_pool_takes_a_prompt_longer_than_a_slot_and_says_what_is_held(tmp_path: Path
                                                                          ) -> None:
    """Two slots of 256 tokens: apart, a 400-token prompt is refused; in one pool of 512 it is
    answered, and one past the pool is refused saying the pool is shared."""
    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    config = (model_block("apart", path, n_ctx=256, parallel=2, threads=1)
              + model_block("pooled", path, n_ctx=256, parallel=2, threads=1, kv_unified=True))
    with running_server(config, tmp_path / "server") as server:
        client = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0)
        ids = [266 + (i % 30) for i in range(400)]  # ordinary tokens of the tiny model
        with pytest.raises(openai.BadRequestError) as apart:
            client.completions.create(model="apart", prompt=ids, max_tokens=4)
        assert "256 tokens" in str(apart.value)
        answer = client.completions.create(model="pooled", prompt=ids, max_tokens=4,
                                           temperature=0, extra_body={"ignore_eos": True})
        assert answer.usage.prompt_tokens == 400 and answer.usage.completion_tokens == 4
        with pytest.raises(openai.BadRequestError) as past:
            client.completions.create(model="pooled", prompt=ids + ids, max_tokens=4)
        assert "512 tokens (one KV pool its conversations share" in str(past.value)
