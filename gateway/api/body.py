"""Decodes a JSON request body into a wire Struct; a bad body is a 400 naming the `param`."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from gateway.errors import InvalidRequest

T = TypeVar("T")

# msgspec ends its validation messages with "- at `$.path`": the field, in JSONPath
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


_decoders: dict[type, msgspec.json.Decoder] = {}  # type: ignore[type-arg]


def decode_body(body: bytes, type_: type[T]) -> T:
    if not body.strip():
        raise InvalidRequest("The request body is empty; send a JSON object")
    try:
        body.decode("utf-8")  # msgspec skips unknown fields unread: check all of it
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid UTF-8 (at byte {exc.start})") from None
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        return decoder.decode(body)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = _AT_PATH.search(text)
        param = found.group(1) if found and found.group(1) else None
        message = text[: found.start()] if found else text
        if param and message.startswith("Object missing required field"):
            param = f"{param}.{message.split('`')[1]}"
        elif message.startswith("Object missing required field"):
            param = message.split("`")[1]
        raise InvalidRequest(f"Invalid request: {message}" + (f" (at `{param}`)" if param else ""),
                             param=param) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply") from None
