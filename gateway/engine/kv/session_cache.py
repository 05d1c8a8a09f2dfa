"""Saved conversations: KV state spilled out of a slot, kept in host RAM within a byte budget.

An entry carries the tokens its state covers, the identity of the model that produced it and the
KV cache's types (`f16/f16`, `q8_0/q8_0`...), so it is never restored into another model or
another cache type (a disk entry saved under another type is left alone, counted in
`other_kv_type`: its conversation is recomputed when it returns). The RAM budget is a hard limit on the bytes held: inserting
evicts least recently used entries first, and an entry larger than the budget is not kept. Entries
pushed out of RAM (or too large for it) go to a directory on disk when one is configured, within
their own budget. The disk tier keeps each model's entries in a room of its own (a subdirectory
named by the model's identity, inside the replica's directory), private to the user (0700/0600),
and an index of their tokens in memory, so an unkeyed conversation saved on disk is found again by
its prefix. No llama.cpp here; the clock is passed in.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import msgspec

from gateway.engine.kv.session_key import UNKEYED, SessionKey, client_of
from gateway.engine.kv.slots import best_unkeyed, common_prefix


@dataclass
class SavedSession:
    key: SessionKey
    model_identity: str
    tokens: list[int]
    state: bytes
    saved_at: float
    kv_type: str = "f16/f16"


class _DiskHeader(msgspec.Struct):
    key: SessionKey
    model_identity: str
    tokens: list[int]
    saved_at: float
    kv_type: str = "f16/f16"  # files from before cache types were chosen: f16


_HEADER_SIZE = struct.Struct("!I")  # a file: header length, msgpack header, then the raw state


class SessionCache:
    def __init__(
        self,
        model_identity: str,
        budget_bytes: int,
        disk_dir: str | None = None,
        disk_budget_bytes: int = 0,
        kv_type: str = "f16/f16",
    ) -> None:
        self.model_identity = model_identity
        self.kv_type = kv_type
        self.budget_bytes = budget_bytes
        self._ram: OrderedDict[SessionKey, SavedSession] = OrderedDict()
        self._disk = (_DiskTier(Path(disk_dir).expanduser() / model_identity, model_identity,
                                disk_budget_bytes, kv_type)
                      if disk_dir and disk_budget_bytes > 0 else None)
        self.bytes_used = 0
        self.pushed_out = 0  # entries that RAM could not keep for want of room (it wants more)

    @property
    def enabled(self) -> bool:
        """Whether anything can be saved at all (RAM or disk)."""
        return self.budget_bytes > 0 or self._disk is not None

    def __len__(self) -> int:
        return len(self._ram)

    def __contains__(self, key: object) -> bool:
        return key in self._ram or (self._disk is not None and key in self._disk)

    def put(self, entry: SavedSession) -> bool:
        """Keep `entry`, evicting older ones to stay within budget. False when it cannot fit."""
        self.discard(entry.key)
        size = len(entry.state)
        if size > self.budget_bytes:
            self.pushed_out += 1
            return self._disk.put(entry) if self._disk else False
        while self.bytes_used + size > self.budget_bytes:
            self.pushed_out += 1
            _, old = self._ram.popitem(last=False)
            self.bytes_used -= len(old.state)
            if self._disk:
                self._disk.put(old)
        self._ram[entry.key] = entry
        self.bytes_used += size
        return True

    def has_room(self, size: int) -> bool:
        """Whether RAM holds `size` more bytes without pushing anything out."""
        return self.bytes_used + size <= self.budget_bytes

    def resize(self, budget_bytes: int) -> None:
        """A new RAM budget (the gateway shares one among all engines): the oldest entries
        go to disk (or are dropped) until the rest fit."""
        self.budget_bytes = budget_bytes
        while self.bytes_used > self.budget_bytes:
            _, old = self._ram.popitem(last=False)
            self.bytes_used -= len(old.state)
            if self._disk:
                self._disk.put(old)

    @property
    def persistent(self) -> bool:
        """Whether it has a disk tier: what it holds can outlive the engine process."""
        return self._disk is not None

    def persist(self) -> int:
        """Everything in RAM to the disk tier, oldest first (the engine is stopping: its
        conversations come back when the next engine of this model file starts). How many
        were written."""
        written = 0
        while self._disk is not None and self._ram:
            _, entry = self._ram.popitem(last=False)
            self.bytes_used -= len(entry.state)
            try:
                written += self._disk.put(entry)
            except OSError:  # a full or gone disk: what is not written is recomputed later
                break
        return written

    @property
    def other_kv_type(self) -> int:
        """Saved conversations on disk made under another KV cache type (recomputed)."""
        return self._disk.other_kv_type if self._disk is not None else 0

    def usage(self) -> tuple[int, int, int, int]:
        """(entries in RAM, their bytes, entries on disk, their bytes)."""
        disk = self._disk
        return (len(self._ram), self.bytes_used, len(disk.index_items()) if disk else 0,
                disk.bytes_used if disk else 0)

    def take(self, key: SessionKey) -> SavedSession | None:
        """Remove and return the entry for `key`; only ever one of this model's."""
        entry = self._ram.get(key)
        if entry is not None:
            if entry.model_identity != self.model_identity or entry.kv_type != self.kv_type:
                return None
            del self._ram[key]
            self.bytes_used -= len(entry.state)
            return entry
        return self._disk.take(key) if self._disk is not None else None

    def tokens_of(self, key: SessionKey) -> list[int] | None:
        """The tokens a saved conversation's KV covers; None when nothing is saved for `key`."""
        entry = self._ram.get(key)
        if entry is not None:
            return entry.tokens
        return self._disk.tokens_of(key) if self._disk is not None else None

    def best_continuation(self, prompt: list[int], prefix: str = UNKEYED) -> SessionKey | None:
        """Key of the unkeyed saved conversation (RAM or disk) this prompt continues, if any,
        among those whose keys start with `prefix` (one client's)."""
        in_ram, shared_ram = best_unkeyed([(k, e.tokens) for k, e in self._ram.items()], prompt,
                                          prefix)
        if self._disk is None:
            return in_ram
        on_disk, shared_disk = best_unkeyed(self._disk.index_items(), prompt, prefix)
        return on_disk if shared_disk > shared_ram else in_ram

    def longest_prefix(self, prompt: list[int], client: str, at_least: int) -> SavedSession | None:
        """The RAM entry of `client`'s that shares the longest prefix with `prompt` (at least
        `at_least` tokens), left in place: its state is copied, not taken."""
        best, best_shared = None, at_least - 1
        for entry in self._ram.values():
            if client_of(entry.key) != client:
                continue
            shared = common_prefix(entry.tokens, prompt)
            if shared > best_shared:
                best, best_shared = entry, shared
        return best

    def discard(self, key: SessionKey) -> None:
        entry = self._ram.pop(key, None)
        if entry is not None:
            self.bytes_used -= len(entry.state)
        if self._disk is not None:
            self._disk.remove(key)


@dataclass
class _OnDisk:
    tokens: list[int]
    size: int
    saved_at: float


class _DiskTier:
    """One model's entries as files in its own directory; the oldest go first when over budget.
    What is there is indexed at start (headers only), so lookups never read the disk."""

    def __init__(self, directory: Path, model_identity: str, budget_bytes: int,
                 kv_type: str = "f16/f16") -> None:
        self.directory = directory
        self.model_identity = model_identity
        self.kv_type = kv_type
        self.other_kv_type = 0  # entries saved under another cache type: left, not restored
        self.budget_bytes = budget_bytes
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self._index: dict[SessionKey, _OnDisk] = {}
        for path in directory.glob("*.kv"):
            header = self._read_header(path)
            if header is None or header.model_identity != model_identity:
                continue
            if header.kv_type != kv_type:
                self.other_kv_type += 1
                continue
            self._index[header.key] = _OnDisk(header.tokens, path.stat().st_size, header.saved_at)

    def _path(self, key: SessionKey) -> Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".kv")

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def tokens_of(self, key: SessionKey) -> list[int] | None:
        item = self._index.get(key)
        return item.tokens if item is not None else None

    def index_items(self) -> list[tuple[SessionKey, list[int]]]:
        return [(key, item.tokens) for key, item in self._index.items()]

    @property
    def bytes_used(self) -> int:
        return sum(item.size for item in self._index.values())

    def put(self, entry: SavedSession) -> bool:
        header = msgspec.msgpack.encode(
            _DiskHeader(entry.key, entry.model_identity, entry.tokens, entry.saved_at,
                        entry.kv_type))
        size = _HEADER_SIZE.size + len(header) + len(entry.state)
        if size > self.budget_bytes:
            return False
        self.remove(entry.key)
        used = self.bytes_used
        for key in sorted(self._index, key=lambda k: self._index[k].saved_at):
            if used + size <= self.budget_bytes:
                break
            used -= self._index[key].size
            self.remove(key)
        path = self._path(entry.key)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(_HEADER_SIZE.pack(len(header)))
            file.write(header)
            file.write(entry.state)
        os.replace(tmp, path)
        self._index[entry.key] = _OnDisk(list(entry.tokens), size, entry.saved_at)
        return True

    def has_room(self, size: int) -> bool:
        """Whether RAM holds `size` more bytes without pushing anything out."""
        return self.bytes_used + size <= self.budget_bytes

    def take(self, key: SessionKey) -> SavedSession | None:
        if key not in self._index:
            return None
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            self._index.pop(key, None)
            return None
        entry = self._decode(data)
        if (entry is None or entry.key != key or entry.model_identity != self.model_identity
                or entry.kv_type != self.kv_type):
            return None  # not ours: leave it where it is
        self.remove(key)
        return entry

    def remove(self, key: SessionKey) -> None:
        if self._index.pop(key, None) is not None:
            self._path(key).unlink(missing_ok=True)

    @staticmethod
    def _decode(data: bytes) -> SavedSession | None:
        try:
            (length,) = _HEADER_SIZE.unpack_from(data)
            header = msgspec.msgpack.decode(data[_HEADER_SIZE.size:_HEADER_SIZE.size + length],
                                            type=_DiskHeader)
        except (struct.error, msgspec.DecodeError):
            return None
        state = data[_HEADER_SIZE.size + length:]
        return SavedSession(header.key, header.model_identity, header.tokens, state,
                            header.saved_at, header.kv_type)

    @staticmethod
    def _read_header(path: Path) -> _DiskHeader | None:
        try:
            with path.open("rb") as file:
                (length,) = _HEADER_SIZE.unpack(file.read(_HEADER_SIZE.size))
                return msgspec.msgpack.decode(file.read(length), type=_DiskHeader)
        except (OSError, struct.error, msgspec.DecodeError):
            return None
