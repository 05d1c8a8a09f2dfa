"""Decodes a JSON request body into a wire Struct; a bad body is a 400 naming the `param`.

The fast path is one typed msgspec decode. When it refuses the body, the `param` is found by
walking the body against the wire types, not by reading msgspec's message:
the first field, list item or nested field that does not convert, or that is required and absent.
msgspec's own message (what was expected) is passed on as it is.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, get_type_hints

import msgspec

from gateway.errors import InvalidRequest

T = TypeVar("T")

_decoders: dict[type, msgspec.json.Decoder] = {}  # type: ignore[type-arg]
# the body as plain values, to walk; a number past a double's range becomes inf, not an error
_untyped = msgspec.json.Decoder(float_hook=float)


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
        try:
            param = locate(_untyped.decode(body), type_)
        except (msgspec.DecodeError, RecursionError):  # bad JSON further on than the bad value
            param = ""
        raise InvalidRequest(f"Invalid request: {exc}", param=param or None) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply") from None


def _converts(value: Any, type_: Any) -> bool:
    try:
        msgspec.convert(value, type_)
    except msgspec.ValidationError:
        return False
    return True


def _is_struct(type_: Any) -> bool:
    return isinstance(type_, type) and issubclass(type_, msgspec.Struct)


def locate(value: Any, type_: Any, path: str = "") -> str:
    """The place (`messages[0].role`) where `value` first fails `type_`; `path` itself when the
    failure is the value as a whole."""
    if get_origin(type_) is Annotated:
        type_ = get_args(type_)[0]
    if get_origin(type_) in (Union, types.UnionType):  # into the member shaped like the value
        for member in get_args(type_):
            if (_is_struct(member) and isinstance(value, dict)) or (
                    get_origin(member) is list and isinstance(value, list)):
                return locate(value, member, path)
        return path
    if _is_struct(type_) and isinstance(value, dict):
        hints = get_type_hints(type_, include_extras=True)
        for field in msgspec.structs.fields(type_):
            where = f"{path}.{field.encode_name}" if path else field.encode_name
            if field.encode_name not in value:
                if field.required:
                    return where
                continue
            if not _converts(value[field.encode_name], hints[field.name]):
                return locate(value[field.encode_name], hints[field.name], where)
        return path
    if get_origin(type_) is list and isinstance(value, list):
        (item,) = get_args(type_)
        for i, element in enumerate(value):
            if not _converts(element, item):
                return locate(element, item, f"{path}[{i}]")
    return path
