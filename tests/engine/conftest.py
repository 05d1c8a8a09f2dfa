from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.engine.llama_backend import LlamaModel
from gateway.frontend.prompt.chat_template import ChatTemplate


@pytest.fixture(scope="session")
def gemma(gemma_path: Path, extra_buffers: bool) -> Iterator[LlamaModel]:
    model = LlamaModel(gemma_path, extra_buffers=extra_buffers)
    yield model
    model.close()


@pytest.fixture
def chat(gemma: LlamaModel) -> Iterator[object]:
    template = ChatTemplate("gemma", gemma.bos_text, gemma.eos_text)

    def tokens(*turns: str) -> list[int]:
        messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
                    for i, t in enumerate(turns)]
        return gemma.tokenize(template.render(messages), add_special=False)

    yield tokens
