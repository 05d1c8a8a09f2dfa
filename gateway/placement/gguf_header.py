"""A GGUF file's header, read fast: its scalar metadata, the length of each array (never its
items: a 262k-token vocabulary took the `gguf` package's reader 10 s), and where the tensor
data starts. No weights are read. Follows the GGUF layout: magic, version, tensor count, key/value
count, the key/values, the tensor infos, then the data at the next `general.alignment`."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# value type -> struct format of a scalar (8: string, 9: array, read apart)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class GgufError(ValueError):
    """Not a GGUF file, or one cut short."""


@dataclass
class GgufHeader:
    values: dict[str, object] = field(default_factory=dict)  # scalars and strings
    array_lengths: dict[str, int] = field(default_factory=dict)
    tensor_count: int = 0
    data_offset: int = 0  # where the tensor data starts
    file_size: int = 0

    @property
    def tensor_bytes(self) -> int:
        """The tensor data: the rest of the file (alignment padding included, a few bytes)."""
        return self.file_size - self.data_offset


class _Cursor:
    def __init__(self, data: mmap.mmap, path: Path) -> None:
        self.data = data
        self.at = 0
        self.path = path

    def unpack(self, fmt: str) -> object:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise GgufError(f"{self.path}: GGUF header cut short")
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return value

    def string(self) -> str:
        length = int(self.unpack("<Q"))  # type: ignore[call-overload]
        raw = self.data[self.at:self.at + length]
        self.at += length
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        for _ in range(count):
            (length,) = struct.unpack_from("<Q", self.data, self.at)
            self.at += 8 + length
        if self.at > len(self.data):
            raise GgufError(f"{self.path}: GGUF header cut short")


def read_header(path: Path) -> GgufHeader:
    with path.open("rb") as file:
        size = path.stat().st_size
        if size < 24:
            raise GgufError(f"{path}: not a GGUF file (too short)")
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                return _parse(_Cursor(data, path), size)
            except struct.error:  # an item's length past the end of the file
                raise GgufError(f"{path}: GGUF header cut short") from None


def _parse(cursor: _Cursor, size: int) -> GgufHeader:
    if cursor.data[:4] != MAGIC:
        raise GgufError(f"{cursor.path}: not a GGUF file (bad magic)")
    cursor.at = 4
    cursor.unpack("<I")  # version
    header = GgufHeader(tensor_count=int(cursor.unpack("<Q")), file_size=size)  # type: ignore[call-overload]
    kv_count = int(cursor.unpack("<Q"))  # type: ignore[call-overload]
    for _ in range(kv_count):
        key = cursor.string()
        kind = int(cursor.unpack("<I"))  # type: ignore[call-overload]
        if kind == _STRING:
            header.values[key] = cursor.string()
        elif kind == _ARRAY:
            item = int(cursor.unpack("<I"))  # type: ignore[call-overload]
            count = int(cursor.unpack("<Q"))  # type: ignore[call-overload]
            header.array_lengths[key] = count
            if item == _STRING:
                cursor.skip_strings(count)
            elif item in _SCALARS:
                cursor.at += count * struct.calcsize(_SCALARS[item])
            else:
                raise GgufError(f"{cursor.path}: nested arrays in `{key}` are not read")
        elif kind in _SCALARS:
            header.values[key] = cursor.unpack(_SCALARS[kind])
        else:
            raise GgufError(f"{cursor.path}: unknown value type {kind} for `{key}`")
    for _ in range(header.tensor_count):  # name, dims, type, offset
        cursor.string()
        n_dims = int(cursor.unpack("<I"))  # type: ignore[call-overload]
        cursor.at += 8 * n_dims + 4 + 8
    alignment = int(header.values.get("general.alignment", DEFAULT_ALIGNMENT))  # type: ignore[call-overload]
    header.data_offset = -(-cursor.at // alignment) * alignment
    if header.data_offset > size:
        raise GgufError(f"{cursor.path}: GGUF header cut short")
    return header
