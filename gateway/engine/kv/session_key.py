"""Session keys: which conversation a KV cache (in a slot, in RAM, on disk) belongs to. Their shape
lives here and nowhere else.

A key is always inside one client's scope (an API key's hash, or an address): a conversation the
client named (`prompt_cache_key`, `X-Session-ID`) is `named(client, name)`; one it did not name gets
a made-up `unkeyed(client)` key, found again by its tokens, and only among that client's
(`unkeyed_prefix`).
"""

from __future__ import annotations

import uuid
from typing import NewType

SessionKey = NewType("SessionKey", str)

NAMED = "k:"
UNKEYED = "~"
_SEPARATOR = "\x1f"  # cannot appear in a client id; a name may contain anything


def named(client: str, name: str) -> SessionKey:
    return SessionKey(f"{NAMED}{client}{_SEPARATOR}{name}")


def unkeyed_prefix(client: str) -> str:
    return f"{UNKEYED}{client}{_SEPARATOR}"


def unkeyed(client: str) -> SessionKey:
    return SessionKey(unkeyed_prefix(client) + uuid.uuid4().hex)


def client_of(key: str) -> str:
    """The client whose conversation `key` is."""
    rest = key[len(NAMED):] if key.startswith(NAMED) else key[len(UNKEYED):]
    return rest.split(_SEPARATOR, 1)[0]
