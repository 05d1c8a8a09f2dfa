"""A model shipped in pieces by several packages (`source.parts`): assembled once, in order, with
progress; verified against its sha256; a missing piece or a mismatch is a clear error naming the
package, and the file is not used."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import ModelConfig, ModelSource
from gateway.model_source import ModelSourceError, resolve_model_path

PIECES = [b"GGUF" + bytes(range(256)) * 40, b"second piece" * 999, b"the end"]


@pytest.fixture
def packages(tmp_path: Path) -> Iterator[list[str]]:
    """Three importable packages, each with its piece and a `get_part_path()`, as the Qwen ones."""
    root = tmp_path / "site"
    names = []
    for i, piece in enumerate(PIECES, 1):
        name = f"parts_test_{tmp_path.name.replace('-', '_')}_{i}"
        package = root / name
        (package / "data").mkdir(parents=True)
        (package / "data" / f"part{i:02d}.bin").write_bytes(piece)
        (package / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(__file__), 'data', 'part{i:02d}.bin')\n")
        names.append(name)
    sys.path.insert(0, str(root))
    yield names
    sys.path.remove(str(root))
    for name in names:
        sys.modules.pop(name, None)


def model(parts: list[str], sha256: str) -> ModelConfig:
    return ModelConfig(id="pieces", source=ModelSource(parts=parts, sha256=sha256))


def test_the_pieces_make_one_verified_file_once(packages: list[str], tmp_path: Path) -> None:
    whole = b"".join(PIECES)
    said: list[str] = []
    path = resolve_model_path(model(packages, hashlib.sha256(whole).hexdigest()),
                              str(tmp_path / "cache"), said.append)
    assert path.read_bytes() == whole
    assert path.stat().st_mode & 0o777 == 0o600
    assert any("100%" in line for line in said) and any("part 3 of 3" in line for line in said)
    assert not list(path.parent.glob("*.partial"))
    mtime = path.stat().st_mtime_ns
    said.clear()
    again = resolve_model_path(model(packages, hashlib.sha256(whole).hexdigest()),
                               str(tmp_path / "cache"), said.append)
    assert again == path and path.stat().st_mtime_ns == mtime and not said  # not again


def test_a_checksum_mismatch_is_an_error_and_leaves_no_file(packages: list[str],
                                                            tmp_path: Path) -> None:
    swapped = [packages[1], packages[0], packages[2]]  # the right pieces, the wrong order
    with pytest.raises(ModelSourceError) as caught:
        resolve_model_path(model(swapped, hashlib.sha256(b"".join(PIECES)).hexdigest()),
                           str(tmp_path / "cache"))
    assert packages[0] in str(caught.value) and "expected" in str(caught.value)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_missing_package_or_piece_is_named(packages: list[str], tmp_path: Path) -> None:
    digest = hashlib.sha256(b"".join(PIECES)).hexdigest()
    with pytest.raises(ModelSourceError, match="part package 'no_such_part_7' is not installed"):
        resolve_model_path(model([*packages, "no_such_part_7"], digest), str(tmp_path / "cache"))
    piece = Path(sys.modules[packages[1]].get_part_path())
    piece.unlink()
    with pytest.raises(ModelSourceError, match=f"{packages[1]}' lacks its part"):
        resolve_model_path(model(packages, digest), str(tmp_path / "cache2"))
