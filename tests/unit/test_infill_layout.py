"""The /infill prompt, token for token as llama.cpp's server lays it out, on the tiny GGUF's real
vocabulary: with repo-level FIM tokens, without them, and cut to fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.engine.llama_backend import LlamaModel
from gateway.frontend.prompt.infill import FIM_WINDOW, SNIPPET_SEPARATOR, ExtraText, FimTokens, infill_tokens
from tests.tiny_model import write_tiny_gguf

PREFIX, SUFFIX, PROMPT = "def add(a, b):\n    ret", "\n\nprint(add(1, 2))\n", "urn a"
EXTRA = [ExtraText("util.py", "def sub(a, b):\n    return a - b\n"),
         ExtraText("main.py", "import util\n")]


@pytest.fixture(scope="module", params=[True, False], ids=["repo-fim", "plain-fim"])
def vocab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LlamaModel:
    path: Path = write_tiny_gguf(tmp_path_factory.mktemp("v") / "tiny.gguf", repo_fim=request.param)
    return LlamaModel(path, vocab_only=True)


def fim_of(vocab: LlamaModel) -> FimTokens:
    assert vocab.fim_tokens is not None
    pre, suf, mid = vocab.fim_tokens
    return FimTokens(pre, suf, mid, rep=vocab.fim_rep if vocab.fim_rep >= 0 else None,
                     sep=vocab.fim_sep if vocab.fim_sep >= 0 else None)


def text(vocab: LlamaModel, value: str) -> list[int]:
    return vocab.tokenize(value, add_special=False, parse_special=False)


def extra_tokens(vocab: LlamaModel, fim: FimTokens, chunks: list[ExtraText]) -> list[int]:
    """The extra context as llama.cpp writes it, before any cut."""
    if fim.rep is not None:
        assert fim.sep is not None
        extra = [fim.rep, *text(vocab, "myproject\n")]
        for chunk in chunks:
            extra += [fim.sep, *text(vocab, chunk.filename + "\n"), *text(vocab, chunk.text)]
        return extra + [fim.sep, *text(vocab, "filename\n")]
    extra = []
    for chunk in chunks:
        extra += [*text(vocab, SNIPPET_SEPARATOR), *text(vocab, chunk.text)]
    return extra


def test_the_layout_is_llama_cpps_token_for_token(vocab: LlamaModel) -> None:
    fim = fim_of(vocab)
    got = infill_tokens(vocab, fim, vocab.bos_token, PREFIX, SUFFIX, EXTRA, PROMPT, n_ctx=8192,
                        n_predict=64)
    expected = [*extra_tokens(vocab, fim, EXTRA), vocab.bos_token, fim.pre, *text(vocab, PREFIX), *text(vocab, PROMPT),
                fim.suf, *text(vocab, SUFFIX), fim.mid]
    assert got == expected


def test_code_that_spells_a_special_token_stays_text(vocab: LlamaModel) -> None:
    fim = fim_of(vocab)
    sneaky = "x = '<|fim_middle|>'"
    got = infill_tokens(vocab, fim, None, sneaky, "", [], "", n_ctx=4096, n_predict=8)
    assert got.count(fim.mid) == 1 and got[-1] == fim.mid  # only the layout's own


def test_prefix_suffix_and_extra_are_cut_as_llama_cpp_cuts_them(vocab: LlamaModel) -> None:
    fim = fim_of(vocab)
    prefix = "a" * 3000  # one token a character in this vocabulary: far more than the window
    suffix = "b" * 3000
    chunk = ExtraText("big.py", "c" * 5000)
    n_ctx, n_predict = 4096, 100
    got = infill_tokens(vocab, fim, vocab.bos_token, prefix, suffix, [chunk], "", n_ctx, n_predict)
    window = min(FIM_WINDOW, n_ctx // 2)
    pre_at, suf_at = got.index(fim.pre), got.index(fim.suf)
    assert got[pre_at + 1:suf_at] == text(vocab, prefix)[-(3 * (window // 4)):]  # its end kept
    assert got[suf_at + 1:-1] == text(vocab, suffix)[:window // 4 - 2]  # its start kept
    extra_budget = n_ctx - window - 2 * n_predict
    assert got.index(vocab.bos_token) == extra_budget  # the extra context fills what is left ...
    assert got[:extra_budget] == extra_tokens(vocab, fim, [chunk])[-extra_budget:]  # ... its end
    assert len(got) < n_ctx - n_predict
