"""The Hugging Face source against a local stand-in for the hub (HF_ENDPOINT), never the network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub_stand_in import hub_serving
from tests.tiny_model import write_tiny_gguf

SCRIPT = """
import sys
from gateway.config import ModelConfig, ModelSource
from gateway.model_source import ModelSourceError, resolve_model_path
model = ModelConfig(id="tiny", source=ModelSource(hf=sys.argv[1]))
try:
    print(resolve_model_path(model, sys.argv[2]))
except ModelSourceError as exc:
    print("ERROR", exc)
"""


def resolve(ref: str, cache: Path, endpoint: str) -> str:
    # a fresh process: huggingface_hub reads HF_ENDPOINT when it is imported
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "5"}
    env.pop("HF_HUB_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT, ref, str(cache)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "tiny.gguf")


def test_downloads_once_into_the_cache(tiny: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with hub_serving({"org/tiny/tiny.gguf": tiny}) as (endpoint, requests):
        first = resolve("org/tiny:tiny.gguf", cache, endpoint)
        assert Path(first).read_bytes() == tiny.read_bytes()
        assert str(cache) in first
        gets = sum(r.startswith("GET") for r in requests)
        second = resolve("org/tiny:tiny.gguf", cache, endpoint)
        assert second == first
        assert sum(r.startswith("GET") for r in requests) == gets  # no second download


def test_missing_file_is_a_clear_error(tiny: Path, tmp_path: Path) -> None:
    with hub_serving({"org/tiny/tiny.gguf": tiny}) as (endpoint, _):
        result = resolve("org/tiny:other.gguf", tmp_path / "cache", endpoint)
    assert result.startswith("ERROR") and "other.gguf" in result


def test_offline_without_cache_is_a_clear_error(tmp_path: Path) -> None:
    result = resolve("org/tiny:tiny.gguf", tmp_path / "cache", "http://127.0.0.1:9")
    assert result.startswith("ERROR")
    assert "offline" in result and "tiny.gguf" in result


def test_offline_with_cache_uses_the_cached_file(tiny: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with hub_serving({"org/tiny/tiny.gguf": tiny}) as (endpoint, _):
        first = resolve("org/tiny:tiny.gguf", cache, endpoint)
    assert resolve("org/tiny:tiny.gguf", cache, "http://127.0.0.1:9") == first
