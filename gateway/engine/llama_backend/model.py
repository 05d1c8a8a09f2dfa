"""A loaded GGUF (`LlamaModel`: vocabulary, metadata, weights), llama.cpp's process-wide setup and
log forwarding, and the JSON-schema grammar converter."""

from __future__ import annotations

import ctypes
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import llama_cpp
from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

log = logging.getLogger(__name__)

_LOG_LEVEL_ERROR = 4

# GBNF for any JSON object (llama.cpp's own); `json_schema_grammar` makes one for a JSON schema
JSON_OBJECT_GRAMMAR: str = JSON_GBNF


# a JSON string's character, as llama.cpp's own converter has it now: no raw control
# characters (llama-cpp-python's copy allows them, and a raw newline in a string is not JSON)
_STRING_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'


def json_schema_grammar(schema_json: str) -> str:
    """GBNF for exactly the JSON `schema_json` describes (llama.cpp's converter, its strings
    held to JSON's characters; raises)."""
    rules = str(json_schema_to_gbnf(schema_json)).splitlines()
    return "\n".join(_STRING_CHAR if r.startswith("char ::=") else r for r in rules) + "\n"


# what llama.cpp logs as errors when a decode is aborted on purpose (see `LlamaContext.abort`)
_ABORT_NOISE = (b"failed with error 1", b"compute status: 1", b"failed to decode, ret = 2")


@llama_cpp.llama_log_callback
def _forward_llama_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    if level == _LOG_LEVEL_ERROR and text and not any(n in text for n in _ABORT_NOISE):
        log.error("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())


_backend_ready = False


def _init_backend() -> None:
    global _backend_ready  # llama.cpp's backend is process-wide; initialise it once
    if not _backend_ready:
        llama_cpp.llama_log_set(_forward_llama_log, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _backend_ready = True


class LlamaModel:
    """A loaded GGUF: vocabulary, metadata and the weights."""

    def __init__(
        self,
        path: Path,
        n_gpu_layers: int = 0,
        progress: Callable[[float], None] | None = None,
        tensor_split: list[float] | None = None,
        vocab_only: bool = False,
        extra_buffers: bool = True,
    ) -> None:
        """Load a GGUF. `vocab_only` loads the tokenizer and metadata, not the weights: what the
        gateway process needs to tokenize and render prompts while an engine process runs it.
        `extra_buffers` off keeps the weights out of llama.cpp's extra CPU buffer types (AMX,
        repacked layouts): slower on some CPUs, but it avoids their faults (AMX inside a VM)."""
        _init_backend()
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        params.vocab_only = vocab_only
        params.use_extra_bufts = extra_buffers
        self.extra_buffers = extra_buffers
        if tensor_split:
            self._split = (ctypes.c_float * len(tensor_split))(*tensor_split)
            params.tensor_split = self._split
        if progress is not None:

            def on_progress(fraction: float, _user: ctypes.c_void_p) -> bool:
                progress(fraction)
                return True

            self._progress_cb = llama_cpp.llama_progress_callback(on_progress)
            params.progress_callback = self._progress_cb
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        self.ptr = model
        self.vocab = llama_cpp.llama_model_get_vocab(model)
        self._piece_buf = ctypes.create_string_buffer(256)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self.eog_tokens = [t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(self.vocab, t)]
        self.eog_set = frozenset(self.eog_tokens)
        self.bos_token = llama_cpp.llama_vocab_bos(self.vocab)
        self.bos_text = self._special_text(self.bos_token)
        self.eos_text = self._special_text(llama_cpp.llama_vocab_eos(self.vocab))
        fim = (llama_cpp.llama_vocab_fim_pre(self.vocab), llama_cpp.llama_vocab_fim_suf(self.vocab),
               llama_cpp.llama_vocab_fim_mid(self.vocab))
        # (prefix, suffix, middle) markers for fill-in-the-middle, when the model has all three
        self.fim_tokens: tuple[int, int, int] | None = fim if min(fim) >= 0 else None
        # repo-level FIM: a repository name, then file names, precede the prompt (-1: none)
        self.fim_rep = int(llama_cpp.llama_vocab_fim_rep(self.vocab))
        self.fim_sep = int(llama_cpp.llama_vocab_fim_sep(self.vocab))
        template = llama_cpp.llama_model_chat_template(model, None)
        self.chat_template: str | None = template.decode("utf-8") if template else None
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(model)
        self.n_embd = int(llama_cpp.llama_model_n_embd(model))
        # a recurrent (Mamba, RWKV) or hybrid model: its state cannot be cut back to a position
        self.recurrent = bool(llama_cpp.llama_model_is_recurrent(model)
                              or llama_cpp.llama_model_is_hybrid(model))
        stat = path.stat()
        self.identity = hashlib.sha256(
            f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{self.describe()}".encode()
        ).hexdigest()[:16]

    def grammar_sampler(self, grammar: str) -> llama_cpp.llama_sampler_p | None:
        """llama.cpp's sampler for this GBNF over this vocabulary; None when it rejects the
        grammar. The caller frees it."""
        sampler = llama_cpp.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        return sampler or None

    def grammar_is_valid(self, grammar: str) -> bool:
        """Whether llama.cpp accepts this GBNF for this vocabulary: checked where a bad one can
        only cost a 400, never in the engine process."""
        sampler = self.grammar_sampler(grammar)
        if sampler is None:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True

    json_object_grammar = JSON_OBJECT_GRAMMAR  # any JSON object

    def schema_grammar(self, schema_json: str) -> str:
        """The GBNF for JSON a schema describes (raises on a schema the converter cannot do)."""
        return json_schema_grammar(schema_json)

    def describe(self) -> str:
        buf = ctypes.create_string_buffer(256)
        llama_cpp.llama_model_desc(self.ptr, buf, len(buf))
        return buf.value.decode("utf-8", "replace")

    def tokenize(self, text: str, add_special: bool, parse_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        tokens = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(
            self.vocab, data, len(data), tokens, capacity, add_special, parse_special
        )
        if count < 0:  # buffer too small: -count is the size needed
            capacity = -count
            tokens = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(
                self.vocab, data, len(data), tokens, capacity, add_special, parse_special
            )
        return list(tokens[:count])

    def token_bytes(self, token: int, special: bool = False) -> bytes:
        size = llama_cpp.llama_token_to_piece(
            self.vocab, token, self._piece_buf, len(self._piece_buf), 0, special
        )
        if size < 0:
            buf = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
            return buf.raw[:size]
        return self._piece_buf.raw[:size]

    def _special_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.token_bytes(token, special=True).decode("utf-8", "replace")

    def close(self) -> None:
        if self.ptr:
            llama_cpp.llama_model_free(self.ptr)
            self.ptr = None


