"""Renders chat messages into a prompt with a Jinja chat template.

The template is the GGUF's own when it has one, else the config's: a name from `NAMED_TEMPLATES`
or inline Jinja. Rendering runs in a sandbox; a template error becomes a `TemplateError`.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gateway.errors import GatewayError
from gateway.frontend.tokenizer import Vocabulary

GEMMA = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
{%- set loop_messages = messages[1:] -%}
{%- else -%}
{%- set first_user_prefix = '' -%}
{%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
{%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}
{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + (message['content'] | trim) + '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"""

CHATML = """{%- for message in messages -%}
{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"""

NAMED_TEMPLATES = {"gemma": GEMMA, "chatml": CHATML}


# what a template is given by the gateway itself: `chat_template_kwargs` may not name these
RESERVED = frozenset({"messages", "tools", "add_generation_prompt", "bos_token", "eos_token",
                      "raise_exception", "strftime_now", "namespace", "range", "dict", "cycler",
                      "joiner", "lipsum"})

# stands in for a message's content while the template renders, to find where contents land
_MARK = "\ue000"
_MARKED = re.compile(f"{_MARK}(\\d+){_MARK}")


class TemplateError(Exception):
    """The chat template failed on these messages (a client error: the messages don't fit it)."""


def _raise(message: str) -> None:
    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    """Today's date as templates print it (Hugging Face's helper; gpt-oss's and Llama 3.x's
    templates call it)."""
    return datetime.datetime.now().strftime(fmt)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    """JSON as the templates' authors wrote them against (Hugging Face's `tojson`, as llama.cpp's
    minja): keys in their order, text unescaped; Jinja's own sorts keys and escapes `<>&'` for
    HTML, so a tool's description would reach the model as `\u003c`."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


class ChatTemplate:
    def __init__(self, source: str, bos_token: str, eos_token: str) -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = _strftime_now
        env.filters["tojson"] = _tojson
        self.source = NAMED_TEMPLATES.get(source, source)  # the Jinja text
        self._template = env.from_string(self.source)
        self._bos = bos_token
        self._eos = eos_token

    def render(self, messages: list[dict[str, Any]],
               tools: list[dict[str, Any]] | None = None,
               variables: dict[str, Any] | None = None) -> str:
        """`variables`: the template's own switches (`enable_thinking`, `reasoning_effort`),
        `chat_template_kwargs`; they never replace the names below."""
        extra = {k: v for k, v in (variables or {}).items() if k not in RESERVED}
        if tools:
            extra["tools"] = tools
        try:
            return self._template.render(
                **extra,
                messages=messages,
                add_generation_prompt=True,
                bos_token=self._bos,
                eos_token=self._eos,
            )
        except TemplateError:
            raise
        except jinja2.TemplateError as exc:
            raise TemplateError(f"chat template failed: {exc}") from None
        except Exception as exc:  # a variable of the wrong type (`chat_template_kwargs`), ...
            raise TemplateError(f"chat template failed: {type(exc).__name__}: {exc}") from None

    def render_parts(self, messages: list[dict[str, Any]],
                     tools: list[dict[str, Any]] | None = None,
                     variables: dict[str, Any] | None = None) -> list[tuple[str, bool]]:
        """The prompt as pieces, each with whether it is text a client wrote (a message's content)
        rather than the template's markup: the caller tokenizes client text without special
        tokens. Found by rendering with a marker in place of each content; a template that
        changes contents in a way this cannot follow (other than trimming) gets one piece of
        markup, as before."""
        whole = self.render(messages, tools, variables)
        # an empty content stays empty: templates test it (Qwen's writes "\n" + content when
        # there is one), and a marker there would not render as it does
        marked = [{**m, "content": f"{_MARK}{i}{_MARK}"} if isinstance(m.get("content"), str)
                  and m["content"] else m for i, m in enumerate(messages)]
        try:
            pieces = _MARKED.split(self.render(marked, tools, variables))
        except TemplateError:
            return [(whole, False)]
        for shape in (lambda t: t, str.strip):  # as written, or trimmed as Gemma's template does
            parts = [(piece, False) if j % 2 == 0 else (shape(messages[int(piece)]["content"]), True)
                     for j, piece in enumerate(pieces)]
            if "".join(text for text, _ in parts) == whole:
                return [part for part in parts if part[0]]
        return [(whole, False)]


def template_for(vocab: Vocabulary | None, configured: str | None,
                 replacing_file: str | None = None) -> ChatTemplate | None:
    """A model's template: the configured file's (it replaces the GGUF's), else the GGUF's own,
    else the config's `chat_template`; None without any (or before its vocabulary is loaded).
    Compiled once per template."""
    if vocab is None:
        return None
    source = (_file_text(replacing_file) if replacing_file else None) or vocab.chat_template \
        or configured
    return _compiled(source, vocab.bos_text, vocab.eos_text) if source else None


@functools.lru_cache(maxsize=16)
def _file_text(path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayError(f"cannot read the chat template file {path}: {exc.strerror}") from None


@functools.lru_cache(maxsize=64)
def _compiled(source: str, bos_token: str, eos_token: str) -> ChatTemplate:
    return ChatTemplate(source, bos_token, eos_token)
