"""`POST /v1/embeddings`: inputs to token arrays, one engine request for all of them, and the
vectors back in OpenAI's shape (floats, or base64 of little-endian float32s, the SDK's default).

Served by models configured with `embeddings = true`, which go on serving chat and completions:
the engine keeps a second context on the same weights for it.
"""

from __future__ import annotations

import base64
import uuid

import numpy as np

from gateway.protocol import openai
from gateway.engine.events import Embedded
from gateway.engine.requests import GenerationRequest
from gateway.errors import ContextLengthExceeded, InvalidRequest
from gateway.frontend.endpoint import built, serve
from gateway.frontend.error_frames import openai_error
from gateway.frontend.event_stream import unfinished
from gateway.fleet.registry import ModelRegistry
from gateway.fleet.served_model import ServedModel
from gateway.frontend.prompt import checks

MAX_INPUTS = 2048  # OpenAI's limit on inputs in one request


def _inputs(body: openai.EmbeddingRequest) -> list[str | list[int]]:
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


def build_embedding_request(loaded: ServedModel, body: openai.EmbeddingRequest, client: str
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
    c = loaded.config.context  # an input is embedded in a context of one conversation's size
    limit = min(loaded.n_ctx_seq, c.n_ctx) if isinstance(c.n_ctx, int) else loaded.n_ctx_seq
    arrays: list[list[int]] = []
    for i, item in enumerate(inputs):
        param = f"input[{i}]" if not isinstance(body.input, str) else "input"
        if isinstance(item, str):
            if not item:
                raise InvalidRequest(f"Input {i} is empty", param=param)
            checks.text_fits(limit, len(item), param)
            tokens = vocab.tokenize(item, add_special=True, parse_special=False)
        else:
            tokens = [int(t) for t in item]
            checks.token_ids(tokens, vocab, param)
        if not tokens:
            raise InvalidRequest(f"Input {i} is empty", param=param)
        if len(tokens) > limit:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {limit} tokens; input {i} has "
                f"{len(tokens)} tokens. Please reduce the length.", param=param)
        arrays.append(tokens)
    return GenerationRequest(request_id=uuid.uuid4().hex, prompt_tokens=[], max_tokens=0,
                             scope=client, embed_inputs=arrays)


async def embed(registry: ModelRegistry, body: openai.EmbeddingRequest, client: str
                ) -> openai.EmbeddingList:
    served = registry.get(body.model)
    answer = await serve(served, False, lambda: _answer(served, body, client), openai_error)
    assert isinstance(answer, openai.EmbeddingList)  # never streamed
    return answer


async def _answer(served: ServedModel, body: openai.EmbeddingRequest, client: str
                  ) -> openai.EmbeddingList:
    request = await built(build_embedding_request, served, body, client)
    result: Embedded | None = None
    async for event in served.run(request, "embeddings"):
        if isinstance(event, Embedded):
            result = event
    if result is None:
        raise unfinished()
    data = []
    for i, vector in enumerate(result.vectors):
        encoded: list[float] | str = vector
        if body.encoding_format == "base64":
            encoded = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        data.append(openai.Embedding(index=i, embedding=encoded))
    return openai.EmbeddingList(data=data, model=served.id,
                                usage=openai.EmbeddingUsage(result.prompt_tokens, result.prompt_tokens))
