"""The only package that imports `llama_cpp`: a model, a multi-sequence context, a batch, samplers.

Thin typed wrappers over llama.cpp's C API through llama-cpp-python's ctypes module. No policy:
which sequence runs when is the engine's business. Not thread-safe: one thread owns a context.
"""

from gateway.engine.llama_backend.context import DecodeAborted, KvLayout, LlamaContext, TokenBatch
from gateway.engine.llama_backend.embedding import EmbeddingContext
from gateway.engine.llama_backend.model import JSON_OBJECT_GRAMMAR, LlamaModel, json_schema_grammar
from gateway.engine.llama_backend.sampler import GrammarStuck, Sampler

__all__ = ["DecodeAborted", "KvLayout", "EmbeddingContext", "GrammarStuck", "JSON_OBJECT_GRAMMAR", "LlamaContext", "LlamaModel",
           "Sampler", "TokenBatch", "json_schema_grammar"]
