"""Writes a tiny llama-architecture GGUF with the `gguf` package: a second model for tests (and
a tiny Mamba one, `write_tiny_mamba`: a recurrent model).

2 layers, width 64, a 300-token SentencePiece-style vocabulary (byte fallback, FIM tokens, optionally
repo-level FIM tokens) and a
chat template in its metadata. Random weights: it talks nonsense, fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter, TokenType

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

DIM, FF, LAYERS, HEADS, VOCAB = 64, 128, 2, 4, 300


def vocabulary(repo_fim: bool = False, extra_specials: tuple[str, ...] = (),
               user_defined: tuple[str, ...] = ()) -> tuple[list[str], list[float], list[int]]:
    """`extra_specials`: more control tokens (a chat format's markup, such as gpt-oss's);
    `user_defined`: tokens that are text but one token each (Qwen3's `<think>`)."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256
    # llama.cpp finds repo-level FIM tokens by their text too: only name them so when asked
    repo = ["<|repo_name|>", "<|file_sep|>"] if repo_fim else ["<|extra_0|>", "<|extra_1|>"]
    specials = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|im_start|>", "<|im_end|>",
                *repo, *extra_specials]
    tokens += specials
    types += [TokenType.CONTROL] * len(specials)
    tokens += user_defined
    types += [TokenType.USER_DEFINED] * len(user_defined)
    specials += user_defined
    pieces = ["\u2581"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["\u2581" + chr(c) for c in range(ord("a"), ord("k"))]
    tokens += pieces[: VOCAB - len(tokens)]
    types += [TokenType.NORMAL] * (VOCAB - len(types))
    normal = VOCAB - 259 - len(specials)
    scores = [0.0] * 3 + [-1000.0] * 256 + [0.0] * len(specials) + [-float(i) for i in range(normal)]
    return tokens, scores, [int(t) for t in types]


def _add_vocabulary(w: GGUFWriter, tokens: list[str], scores: list[float], types: list[int],
                    eos_id: int) -> None:
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(eos_id)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)


def _write(w: GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_tiny_gguf(path: Path, seed: int = 0, repo_fim: bool = False,
                    template: str = TEMPLATE, extra_specials: tuple[str, ...] = (),
                    user_defined: tuple[str, ...] = (), eos: str | None = None) -> Path:
    """`repo_fim`: the model also has repo-level FIM tokens (a repository name, file separators),
    as Qwen2.5-Coder has. `eos`: the token that ends an answer (else `</s>`)."""
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), "llama")
    w.add_name("tiny-test-llama")
    w.add_context_length(2048)
    w.add_embedding_length(DIM)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(HEADS)
    w.add_rope_dimension_count(DIM // HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    tokens, scores, types = vocabulary(repo_fim, extra_specials, user_defined)
    _add_vocabulary(w, tokens, scores, types, tokens.index(eos) if eos else 2)
    w.add_uint32("tokenizer.ggml.fim_pre_token_id", tokens.index("<|fim_prefix|>"))
    w.add_uint32("tokenizer.ggml.fim_suf_token_id", tokens.index("<|fim_suffix|>"))
    w.add_uint32("tokenizer.ggml.fim_mid_token_id", tokens.index("<|fim_middle|>"))
    if repo_fim:
        w.add_uint32("tokenizer.ggml.fim_rep_token_id", tokens.index("<|repo_name|>"))
        w.add_uint32("tokenizer.ggml.fim_sep_token_id", tokens.index("<|file_sep|>"))
    w.add_chat_template(template)

    def tensor(name: str, *shape: int, scale: float = 0.08) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    tensor("token_embd.weight", VOCAB, DIM, scale=0.5)
    w.add_tensor("output_norm.weight", np.ones(DIM, dtype=np.float32))
    tensor("output.weight", VOCAB, DIM, scale=0.5)
    for i in range(LAYERS):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(DIM, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(DIM, dtype=np.float32))
        for part in ("q", "k", "v", "output"):
            tensor(f"blk.{i}.attn_{part}.weight", DIM, DIM)
        tensor(f"blk.{i}.ffn_gate.weight", FF, DIM)
        tensor(f"blk.{i}.ffn_up.weight", FF, DIM)
        tensor(f"blk.{i}.ffn_down.weight", DIM, FF)
    _write(w)
    return path


def write_tiny_mamba(path: Path, seed: int = 0) -> Path:
    """A tiny Mamba (recurrent: a state per sequence instead of a KV cache) with the same
    vocabulary and chat template: 2 layers, width 64, random weights."""
    inner, state, rank, conv = 2 * DIM, 16, 8, 4
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), "mamba")
    w.add_name("tiny-test-mamba")
    w.add_context_length(2048)
    w.add_embedding_length(DIM)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(0)
    w.add_head_count(0)
    w.add_ssm_conv_kernel(conv)
    w.add_ssm_inner_size(inner)
    w.add_ssm_state_size(state)
    w.add_ssm_time_step_rank(rank)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    _add_vocabulary(w, *vocabulary(), eos_id=2)
    w.add_chat_template(TEMPLATE)

    def tensor(name: str, *shape: int, scale: float = 0.08) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    tensor("token_embd.weight", VOCAB, DIM, scale=0.5)
    w.add_tensor("output_norm.weight", np.ones(DIM, dtype=np.float32))
    tensor("output.weight", VOCAB, DIM, scale=0.5)
    for i in range(LAYERS):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(DIM, dtype=np.float32))
        tensor(f"blk.{i}.ssm_in.weight", 2 * inner, DIM)
        tensor(f"blk.{i}.ssm_conv1d.weight", inner, conv)
        tensor(f"blk.{i}.ssm_conv1d.bias", inner)
        tensor(f"blk.{i}.ssm_x.weight", rank + 2 * state, inner)
        tensor(f"blk.{i}.ssm_dt.weight", inner, rank)
        tensor(f"blk.{i}.ssm_dt.bias", inner)
        w.add_tensor(f"blk.{i}.ssm_a",
                     -np.exp(rng.standard_normal((inner, state)) * 0.1).astype(np.float32))
        w.add_tensor(f"blk.{i}.ssm_d", np.ones(inner, dtype=np.float32))
        tensor(f"blk.{i}.ssm_out.weight", DIM, inner)
    _write(w)
    return path
