from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.engine.llama_backend import LlamaModel


@pytest.fixture(scope="session")
def gemma(gemma_path: Path, extra_buffers: bool) -> Iterator[LlamaModel]:
    model = LlamaModel(gemma_path, extra_buffers=extra_buffers)
    yield model
    model.close()
