"""OpenAI's published Responses schemas (`Response`, `ResponseStreamEvent`), pinned in
`openapi/responses_schemas.json` (extracted from openai/openai-openapi's openapi.yaml; its
`source` names the commit), as a check tests run on what `/v1/responses` returns and streams."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMAS = Path(__file__).parent / "openapi" / "responses_schemas.json"
URI = "urn:openai:responses-schemas"


def _plain(node: Any) -> Any:
    """OpenAPI's one 2019-09 keyword in these schemas (`$recursiveRef`, ignored by 2020-12) as the
    `$ref` it means; nothing else changes."""
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("$recursiveRef") == "#":
        return {"$ref": "#/components/schemas/CompoundFilter"}
    return {k: _plain(v) for k, v in node.items()}


def schema_errors() -> Callable[[dict[str, Any], str], list[str]]:
    """A check: the errors of an object against one of the schemas ([] when it is the spec's)."""
    registry = Registry().with_resource(URI, Resource.from_contents(
        _plain(json.loads(SCHEMAS.read_text())), default_specification=DRAFT202012))
    validators = {name: Draft202012Validator({"$ref": f"{URI}#/components/schemas/{name}"},
                                             registry=registry)
                  for name in ("Response", "ResponseStreamEvent")}

    def errors(instance: dict[str, Any], name: str) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validators[name].iter_errors(instance)]
    return errors


def events_of(text: str) -> list[dict[str, Any]]:
    events = []
    for frame in text.strip().split("\n\n"):
        data = [line[6:] for line in frame.split("\n") if line.startswith("data: ")]
        if data:
            events.append(json.loads(data[0]))
    return events
