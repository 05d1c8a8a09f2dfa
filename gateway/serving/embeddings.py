"""`POST /v1/embeddings`: inputs to token arrays, one engine request for all of them, and the
vectors back in OpenAI's shape (floats, or base64 of little-endian float32s, the SDK's default).

Served by models configured with `embeddings = true`, which go on serving chat and completions:
the engine keeps a second context on the same weights for it.
"""

from __future__ import annotations

import asyncio
import base64
import uuid

import numpy as np

from gateway import wire
from gateway.engine.types import Embedded, Failed, GenerationRequest
from gateway.errors import ContextLengthExceeded, InvalidRequest
from gateway.serving.failures import EngineFailure
from gateway.serving.model_registry import ModelRegistry, ServedModel
from gateway.serving.request_builder import MAX_CHARS_PER_TOKEN

MAX_INPUTS = 2048  # OpenAI's limit on inputs in one request


def _inputs(body: wire.EmbeddingRequest) -> list[str | list[int]]:
    """The inputs, one per vector: a text, texts, a token array, or token arrays."""
    value = body.input
    if isinstance(value, str):
        return [value]
    if value and all(isinstance(v, int) for v in value):
        return [[v for v in value if isinstance(v, int)]]
    if any(isinstance(v, int) for v in value):
        raise InvalidRequest("`input` is a text, a list of texts, a token array or a list of "
                             "token arrays; not a mix", param="input")
    return [v for v in value if not isinstance(v, int)]


def build_embedding_request(loaded: ServedModel, body: wire.EmbeddingRequest, client: str
                            ) -> GenerationRequest:
    if not loaded.config.embeddings:
        raise InvalidRequest(f"Model `{loaded.id}` does not serve embeddings; set "
                             "`embeddings = true` in its [[models]] entry", param="model")
    vocab = loaded.tokenizer
    assert vocab is not None  # a ready model has its vocabulary
    inputs = _inputs(body)
    if not inputs:
        raise InvalidRequest("`input` must not be empty", param="input")
    if len(inputs) > MAX_INPUTS:
        raise InvalidRequest(f"At most {MAX_INPUTS} inputs are accepted; got {len(inputs)}",
                             param="input")
    if body.dimensions is not None and body.dimensions != vocab.n_embd:
        raise InvalidRequest(f"This model's embeddings have {vocab.n_embd} dimensions",
                             param="dimensions")
    limit = loaded.n_ctx_seq
    arrays: list[list[int]] = []
    for i, item in enumerate(inputs):
        param = f"input[{i}]" if not isinstance(body.input, str) else "input"
        if isinstance(item, str):
            if not item:
                raise InvalidRequest(f"Input {i} is empty", param=param)
            if len(item) > limit * MAX_CHARS_PER_TOKEN:
                raise ContextLengthExceeded(f"Input {i} is longer than {limit} tokens can hold",
                                            param=param)
            tokens = vocab.tokenize(item, add_special=True, parse_special=False)
        else:
            tokens = [int(t) for t in item]
            bad = [t for t in tokens if not 0 <= t < vocab.n_vocab]
            if bad:
                raise InvalidRequest(f"Token id {bad[0]} is out of the vocabulary", param=param)
        if not tokens:
            raise InvalidRequest(f"Input {i} is empty", param=param)
        if len(tokens) > limit:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {limit} tokens; input {i} has "
                f"{len(tokens)} tokens. Please reduce the length.", param=param)
        arrays.append(tokens)
    return GenerationRequest(request_id=uuid.uuid4().hex, prompt_tokens=[], max_tokens=0,
                             scope=client, embed_inputs=arrays)


async def embed(registry: ModelRegistry, body: wire.EmbeddingRequest, client: str
                ) -> wire.EmbeddingList:
    served = registry.get(body.model)
    await served.wait_ready()
    request = await asyncio.to_thread(build_embedding_request, served, body, client)
    result: Embedded | None = None
    async for event in served.run(request, "embeddings"):
        if isinstance(event, Failed):
            raise EngineFailure(event)
        if isinstance(event, Embedded):
            result = event
    if result is None:
        raise EngineFailure(Failed("the engine ended the request without answering it"))
    data = []
    for i, vector in enumerate(result.vectors):
        encoded: list[float] | str = vector
        if body.encoding_format == "base64":
            encoded = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        data.append(wire.Embedding(index=i, embedding=encoded))
    return wire.EmbeddingList(data=data, model=served.id,
                              usage=wire.EmbeddingUsage(result.prompt_tokens, result.prompt_tokens))
