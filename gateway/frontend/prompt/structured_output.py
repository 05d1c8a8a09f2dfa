"""`response_format` to a grammar the engine's sampler follows: `json_object` (any JSON object) or
`json_schema` (JSON that the schema describes), through llama.cpp's own GBNF converter.

Everything that could go wrong is found here, as a 400: the engine process only ever receives a
grammar that llama.cpp has already accepted for this vocabulary.
"""

from __future__ import annotations

import json

from gateway.protocol.openai import ResponseFormat, SamplingFields
from gateway.frontend.tokenizer import Vocabulary
from gateway.errors import InvalidRequest


def grammar_for(body: SamplingFields, vocab: Vocabulary) -> str | None:
    """The GBNF for the request's `response_format` (or its own `grammar`, llama-server's
    field); None when the output is free text."""
    fmt = body.response_format
    free = fmt is None or fmt.type == "text"
    if body.grammar is not None and not free:
        raise InvalidRequest("`grammar` and a JSON `response_format` cannot be combined",
                             param="grammar")
    if body.grammar is not None:
        if not vocab.grammar_is_valid(body.grammar):
            raise InvalidRequest("llama.cpp could not parse this grammar", param="grammar")
        return body.grammar
    if fmt is None or fmt.type == "text":
        return None
    grammar = _grammar(fmt, vocab)
    if body.ignore_eos or body.min_tokens:
        # a finished JSON value allows only the end token: suppressing it would leave no token
        param = "ignore_eos" if body.ignore_eos else "min_tokens"
        raise InvalidRequest(f"`{param}` cannot be combined with a JSON `response_format`",
                             param=param)
    if not vocab.grammar_is_valid(grammar):
        raise InvalidRequest("llama.cpp could not use the grammar made from this schema",
                             param="response_format.json_schema.schema")
    return grammar


def _grammar(fmt: ResponseFormat, vocab: Vocabulary) -> str:
    if fmt.type == "json_object":
        return vocab.json_object_grammar
    if fmt.type != "json_schema":
        raise InvalidRequest(
            f"Unknown `response_format` type `{fmt.type}`; use text, json_object or json_schema",
            param="response_format.type",
        )
    if fmt.json_schema is None or fmt.json_schema.schema is None:
        raise InvalidRequest("`response_format.json_schema.schema` is required for json_schema",
                             param="response_format.json_schema.schema")
    try:
        return vocab.schema_grammar(json.dumps(fmt.json_schema.schema))
    except Exception as exc:  # the converter raises whatever it meets; all of it is the schema's
        raise InvalidRequest(f"Unsupported JSON schema: {exc}",
                             param="response_format.json_schema.schema") from None
