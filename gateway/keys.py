"""API and admin keys: gathered from the config, a file and an environment variable, and checked
in constant time. A key is never logged; a matching key is known by a short hash of it (the
client's identity, e.g. for scoping sessions), never by its text.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path


class KeySourceError(Exception):
    """A key source that cannot be read; the message names it, never a key."""


def gather_keys(inline: list[str], file: str | None, env: str | None) -> list[str]:
    keys = [k.strip() for k in inline if k.strip()]
    if file is not None:
        path = Path(file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeySourceError(f"cannot read the key file {path}: {exc.strerror}") from None
        keys += [line.strip() for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise KeySourceError(f"the environment variable {env} named for keys is not set")
        keys += [k.strip() for k in value.replace("\n", ",").split(",") if k.strip()]
    return keys


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class KeyRing:
    def __init__(self, keys: list[str]) -> None:
        self._keys = [k.encode() for k in keys]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def match(self, presented: str) -> str | None:
        """The id of the key `presented` is, or None. Every key is compared, in constant time."""
        candidate = presented.encode()
        found = None
        for key in self._keys:
            if hmac.compare_digest(key, candidate):
                found = key
        return key_id(found.decode()) if found is not None else None
