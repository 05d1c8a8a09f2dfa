"""The fast GGUF header reader agrees with the `gguf` package's own reader, and refuses files
that are not GGUF or are cut short, naming them."""

from __future__ import annotations

from pathlib import Path

import pytest
from gguf import GGUFReader

from gateway.placement.footprint import footprint
from gateway.placement.gguf_header import GgufError, read_header
from tests.tiny_model import write_tiny_gguf


def test_it_reads_what_the_gguf_package_reads(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    header = read_header(path)
    reference = GGUFReader(str(path))
    assert header.tensor_count == len(reference.tensors)
    assert header.data_offset == reference.data_offset
    assert header.tensor_bytes == sum(int(t.n_bytes) for t in reference.tensors)
    arch = reference.fields["general.architecture"].contents()
    assert header.values["general.architecture"] == arch
    for key in (f"{arch}.block_count", f"{arch}.embedding_length",
                f"{arch}.attention.head_count"):
        assert header.values[key] == reference.fields[key].contents()
    tokens = reference.fields["tokenizer.ggml.tokens"].contents()
    assert header.array_lengths["tokenizer.ggml.tokens"] == len(tokens)
    need = footprint(path, 512, 2, 512)
    assert need.weights == header.tensor_bytes and need.kv > 0


def test_a_file_that_is_not_gguf_or_is_cut_short_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"this is not a gguf file at all")
    with pytest.raises(GgufError, match="not-a-model.gguf.*bad magic"):
        read_header(bad)
    whole = write_tiny_gguf(tmp_path / "tiny.gguf").read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[:200])
    with pytest.raises(GgufError, match="cut.gguf.*cut short"):
        read_header(cut)


def test_the_kv_cache_is_planned_in_its_types(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    f16 = footprint(path, 512, 2, 512).kv
    assert footprint(path, 512, 2, 512, "q8_0", "q8_0").kv == int(f16 * 34 / 64)
    assert footprint(path, 512, 2, 512, "q4_0", "q4_0").kv == int(f16 * 18 / 64)
    assert footprint(path, 512, 2, 512, "q8_0", "f16").kv == int(f16 * (34 / 32 + 2) / 4)
