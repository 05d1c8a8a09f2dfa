"""Saved conversations: KV state spilled out of a slot, kept in host RAM within a byte budget.

An entry carries the tokens its state covers and the identity of the model that produced it, so it
is never restored into another model. The RAM budget is a hard limit on the bytes held: inserting
evicts least recently used entries first, and an entry larger than the budget is not kept. Entries
pushed out of RAM go to a directory on disk when one is configured, within their own budget.
No llama.cpp here; the clock is passed in.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import msgspec

from gateway.engine.slots import UNKEYED, common_prefix, continues


@dataclass
class SavedSession:
    key: str
    model_identity: str
    tokens: list[int]
    state: bytes
    saved_at: float


class _DiskRecord(msgspec.Struct):
    key: str
    model_identity: str
    tokens: list[int]
    state: bytes
    saved_at: float


class SessionCache:
    def __init__(
        self,
        model_identity: str,
        budget_bytes: int,
        disk_dir: str | None = None,
        disk_budget_bytes: int = 0,
    ) -> None:
        self.model_identity = model_identity
        self.budget_bytes = budget_bytes
        self._ram: OrderedDict[str, SavedSession] = OrderedDict()
        self._disk = _DiskTier(Path(disk_dir).expanduser(), disk_budget_bytes) if disk_dir else None
        self.bytes_used = 0

    def __len__(self) -> int:
        return len(self._ram)

    def __contains__(self, key: str) -> bool:
        return key in self._ram or (self._disk is not None and key in self._disk)

    def put(self, entry: SavedSession) -> bool:
        """Keep `entry`, evicting older ones to stay within budget. False when it cannot fit."""
        self.discard(entry.key)
        size = len(entry.state)
        if size > self.budget_bytes:
            return self._disk.put(entry) if self._disk else False
        while self.bytes_used + size > self.budget_bytes:
            _, old = self._ram.popitem(last=False)
            self.bytes_used -= len(old.state)
            if self._disk:
                self._disk.put(old)
        self._ram[entry.key] = entry
        self.bytes_used += size
        return True

    def take(self, key: str) -> SavedSession | None:
        """Remove and return the entry for `key` if it belongs to this model."""
        entry = self._ram.pop(key, None)
        if entry is not None:
            self.bytes_used -= len(entry.state)
        elif self._disk is not None:
            entry = self._disk.take(key)
        if entry is None or entry.model_identity != self.model_identity:
            return None
        return entry

    def best_continuation(self, prompt: list[int]) -> str | None:
        """Key of the unkeyed saved conversation this prompt continues, if any (RAM tier)."""
        best, best_shared = None, 0
        for key, entry in self._ram.items():
            if not key.startswith(UNKEYED):
                continue
            shared = common_prefix(entry.tokens, prompt)
            if continues(entry.tokens, prompt, shared) and shared > best_shared:
                best, best_shared = key, shared
        return best

    def discard(self, key: str) -> None:
        entry = self._ram.pop(key, None)
        if entry is not None:
            self.bytes_used -= len(entry.state)
        if self._disk is not None:
            self._disk.take(key)


class _DiskTier:
    """Entries as files in one directory; the oldest files go first when over budget."""

    def __init__(self, directory: Path, budget_bytes: int) -> None:
        self.directory = directory
        self.budget_bytes = budget_bytes
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".kv")

    def __contains__(self, key: str) -> bool:
        return self._path(key).exists()

    def put(self, entry: SavedSession) -> bool:
        data = msgspec.msgpack.encode(
            _DiskRecord(entry.key, entry.model_identity, entry.tokens, entry.state, entry.saved_at)
        )
        if len(data) > self.budget_bytes:
            return False
        files = sorted(self.directory.glob("*.kv"), key=lambda p: p.stat().st_mtime)
        used = sum(p.stat().st_size for p in files)
        while files and used + len(data) > self.budget_bytes:
            oldest = files.pop(0)
            used -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
        path = self._path(entry.key)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return True

    def take(self, key: str) -> SavedSession | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        path.unlink(missing_ok=True)
        try:
            rec = msgspec.msgpack.decode(data, type=_DiskRecord)
        except msgspec.DecodeError:
            return None
        return SavedSession(rec.key, rec.model_identity, rec.tokens, rec.state, rec.saved_at)
