"""Turns an OpenAI wire request into a validated `GenerationRequest` for one model.

Everything that can be checked before a byte is streamed is checked here: parameter ranges (400
naming the `param`), the chat template, tokenization and the context length (400
`context_length_exceeded`). The engine only ever sees what this module produced.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from gateway.protocol.openai import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    ContentPart,
    SamplingFields,
)
from gateway.engine.kv.session_key import SessionKey, named
from gateway.engine.requests import GenerationRequest, SamplingParams
from gateway.errors import InvalidRequest
from gateway.engine.hole_end import hole_around
from gateway.frontend.prompt import checks
from gateway.frontend.prompt.chat_template import ChatTemplate, TemplateError, template_for
from gateway.frontend.tokenizer import Vocabulary
from gateway.frontend.prompt.infill import hole_in_prompt
from gateway.fleet.served_model import ServedModel
from gateway.frontend.tools import formats as tool_formats
from gateway.frontend.tools import plan as tools
from gateway.frontend.prompt.structured_output import grammar_for
from gateway.frontend.prompt import thinking_switches as switches
from gateway.frontend import reasoning

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}

MAX_MESSAGES = 4096  # checked before any rendering: no chat has more messages than this


def sampling_params(body: SamplingFields) -> SamplingParams:
    """The sampler's settings; their ranges were checked when the body was decoded."""
    return SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        top_k=body.top_k or 0,
        min_p=body.min_p or 0.0,
        seed=body.seed,
        presence_penalty=body.presence_penalty or 0.0,
        frequency_penalty=body.frequency_penalty or 0.0,
        repeat_penalty=1.0 if body.repeat_penalty is None else body.repeat_penalty,
    )


def session_key(body: SamplingFields, header: str | None, client: str = "") -> SessionKey | None:
    """The conversation a request belongs to: its client's `prompt_cache_key`, else X-Session-ID.
    Scoped to the client (API key, or address without keys): two clients naming the same key have
    two conversations. `user` labels an end user, not a conversation."""
    name = body.prompt_cache_key or header
    return named(client, name) if name else None


def model_template(loaded: ServedModel) -> ChatTemplate | None:
    return template_for(loaded.tokenizer, loaded.config.chat_template,
                        loaded.config.chat_template_file)


def tool_plan(loaded: ServedModel, body: ChatCompletionRequest) -> tools.ToolPlan | None:
    """How a chat request's tools are asked for: in the template's own format where it has one."""
    template = model_template(loaded)
    native = tool_formats.format_of(template.source if template else None)
    return tools.plan(body.tools, body.tool_choice, body.parallel_tool_calls, native)


def _finish_building(
    loaded: ServedModel,
    body: SamplingFields,
    max_tokens: int | None,
    tokens: list[int],
    prompt_param: str,
    session_header: str | None,
    client: str,
    grammar: str | None = None,
) -> GenerationRequest:
    vocab = loaded.tokenizer
    assert vocab is not None  # a ready model has its vocabulary
    sampling = msgspec.structs.replace(sampling_params(body),
                                       logit_bias=_logit_bias(body, vocab.n_vocab))
    room = checks.room_after(loaded.n_ctx_seq, tokens, prompt_param, loaded.pool_held)
    return GenerationRequest(
        request_id=uuid.uuid4().hex,
        prompt_tokens=tokens,
        max_tokens=room if max_tokens is None else min(max_tokens, room),
        sampling=sampling,
        stop=checks.stop_strings(body.stop),
        ignore_eos=bool(body.ignore_eos),
        min_tokens=body.min_tokens or 0,
        session_key=session_key(body, session_header, client),
        scope=client,
        grammar=grammar if grammar is not None else grammar_for(body, vocab),
        logprobs=_logprobs(body),
        draft_max=body.speculative_n_max,
    )


def _logprobs(body: SamplingFields) -> int | None:
    """How many alternatives each drawn token's logprob comes with; None: no logprobs."""
    if isinstance(body, ChatCompletionRequest):
        if body.top_logprobs is not None and not body.logprobs:
            raise InvalidRequest("`top_logprobs` needs `logprobs` set to true",
                                 param="top_logprobs")
        return (body.top_logprobs or 0) if body.logprobs else None
    return getattr(body, "logprobs", None)


def _logit_bias(body: SamplingFields, n_vocab: int) -> list[tuple[int, float]]:
    biases = []
    for key, bias in (body.logit_bias or {}).items():
        try:
            token = int(key)
        except ValueError:
            token = -1
        if not 0 <= token < n_vocab:
            raise InvalidRequest(f"`logit_bias` key `{key}` is not a token id of this model",
                                 param="logit_bias")
        biases.append((token, bias))
    return biases



def _message_text(index: int, content: str | list[ContentPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for j, part in enumerate(content):
        if part.type == "text" and part.text is None:
            raise InvalidRequest("A text content part needs its `text`",
                                 param=f"messages[{index}].content[{j}].text")
        if part.type != "text" or part.text is None:
            raise InvalidRequest(
                f"Content part type `{part.type}` is not supported by this model; send text parts",
                param=f"messages[{index}].content[{j}]",
            )
        parts.append(part.text)
    return "".join(parts)


def chat_tokens(template: ChatTemplate, vocab: Vocabulary, messages: list[dict[str, Any]],
                tools_for_template: list[dict[str, Any]] | None = None,
                variables: dict[str, Any] | None = None) -> tuple[list[int], str, int]:
    """The prompt's tokens, its text, and where (in tokens) the last text a client wrote begins
    (0: none found). The template's markup may spell special tokens; what clients wrote never
    does: text like `<start_of_turn>model` inside a message stays text, no forged turn."""
    tokens: list[int] = []
    last_client = 0
    parts = template.render_parts(messages, tools_for_template, variables)
    for i, (text, from_client) in enumerate(parts):
        add_bos = i == 0 and vocab.add_bos and not (vocab.bos_text and text.startswith(vocab.bos_text))
        if from_client:
            last_client = len(tokens)
        tokens += vocab.tokenize(text, add_special=add_bos, parse_special=not from_client)
    return tokens, "".join(text for text, _ in parts), last_client


@dataclass(frozen=True)
class ChatPrompt:
    """A chat request's prompt as its template rendered it."""

    tokens: list[int]
    text: str
    plan: tools.ToolPlan | None  # how its tools were asked for (to read the answer with)
    template: ChatTemplate
    last_client: int = 0  # where the last message's text begins, in tokens (0: not found)


def chat_prompt(loaded: ServedModel, body: ChatCompletionRequest) -> ChatPrompt:
    """The prompt of a chat request (checked: roles, sizes, spelled special tokens)."""
    if not body.messages:
        raise InvalidRequest("`messages` must not be empty", param="messages")
    if len(body.messages) > MAX_MESSAGES:
        raise InvalidRequest(f"At most {MAX_MESSAGES} messages are accepted; got "
                             f"{len(body.messages)}", param="messages")
    template = model_template(loaded)
    if template is None:
        raise InvalidRequest(
            f"Model `{loaded.id}` has no chat template; use /v1/completions or configure one",
            param="model",
        )
    thinks = reasoning.format_of(template.source)
    plan = tool_plan(loaded, body)
    messages: list[dict[str, Any]] = []
    for i, message in enumerate(body.messages):
        if message.role not in ROLES:
            raise InvalidRequest(f"Unknown role `{message.role}`", param=f"messages[{i}].role")
        text = _message_text(i, message.content)
        if plan is not None and plan.native is not None:
            messages.append(_with_thinking(tool_formats.template_message(message, text), message,
                                           thinks))
            continue
        role, text = tools.history_message(message, text)
        messages.append(_with_thinking(
            {"role": "system" if role == "developer" else role, "content": text}, message, thinks))
    rendered_tools = None
    if plan is not None and plan.native is not None:  # the template renders the tools
        rendered_tools = tool_formats.template_tools(body.tools or [])
        _refuse_special_spelling(loaded, [rendered_tools,
                                          [m.get("tool_calls") for m in messages]])
    elif plan is not None:  # the tools and the answer's shape, in the system prompt
        if messages[0]["role"] == "system":
            messages[0]["content"] += "\n\n" + plan.instructions
        else:
            messages.insert(0, {"role": "system", "content": plan.instructions})
    checks.text_fits(loaded.n_ctx_seq, sum(len(m["content"]) + len(m.get("reasoning_content", ""))
                                           for m in messages), "messages")
    llama = loaded.tokenizer
    assert llama is not None  # a ready model has its vocabulary
    variables = switches.template_variables(template.source, body, loaded.config)
    _refuse_spelled(loaded, switches.spelled_text(body.chat_template_kwargs or {}),
                    "chat_template_kwargs")
    _refuse_spelled(loaded, "".join(m.get("reasoning_content", "") for m in messages), "messages")
    try:
        tokens, text, last_client = chat_tokens(template, llama, messages, rendered_tools,
                                                variables)
    except TemplateError as exc:
        raise InvalidRequest(str(exc), param="messages") from None
    if not last_client:  # the template rewrote a content (thinking templates cut an answer's
        # thinking out): the prompt was read as markup, so no content may spell a special token
        for i, m in enumerate(messages):
            if isinstance(m.get("content"), str):
                _refuse_spelled(loaded, m["content"], f"messages[{i}].content")
    return ChatPrompt(tokens, text, plan, template, last_client)


def build_chat_request(
    loaded: ServedModel, body: ChatCompletionRequest, session_header: str | None, client: str = ""
) -> tuple[GenerationRequest, tools.ToolPlan | None]:
    """The engine request, and how its tools were asked for (to read the answer with)."""
    prompt = chat_prompt(loaded, body)
    llama = loaded.tokenizer
    assert llama is not None  # a ready model has its vocabulary
    plan = prompt.plan
    max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    grammar = (_tool_grammar(body, plan, llama)
               if plan is not None and plan.schema is not None else None)
    request = _finish_building(loaded, body, max_tokens, prompt.tokens, "messages",
                               session_header, client, grammar)
    source = prompt.template.source
    fmt = reasoning.format_of(source)
    if fmt is not None:
        budget = switches.budget_of(source, body, loaded.config)
        spec = switches.thinking_spec(fmt, prompt.text, budget, llama, request.grammar is not None)
        request = msgspec.structs.replace(request, thinking=spec)
    return request, plan


def _with_thinking(out: dict[str, Any], message: ChatMessage,
                   thinks: reasoning.ThinkFormat | None) -> dict[str, Any]:
    """An assistant message's thinking, where templates read it: `reasoning_content` (Qwen3's)
    and `thinking` (gpt-oss's); most templates leave earlier turns' thinking out. A content that
    still holds its thinking block (a client that sent the raw answer back) is split here as the
    template would split it, so the template is given the reply alone (and the prompt can tell
    the client's text from the template's markup)."""
    if message.role != "assistant":
        return out
    thought = message.reasoning_content
    content = out.get("content")
    if thinks is not None and not thinks.special and isinstance(content, str) \
            and thinks.close in content:
        before, _, after = content.partition(thinks.close)
        out["content"] = after.lstrip("\n")
        thought = thought or before.split(thinks.open)[-1].strip("\n")
    if thought:
        out["reasoning_content"] = out["thinking"] = thought
    return out


def _refuse_special_spelling(loaded: ServedModel, rendered: list[Any]) -> None:
    """Tools and calls the template renders are markup to it: one that spells a special token
    (a forged turn) is refused, as message text never may spell one."""
    _refuse_spelled(loaded, json.dumps(rendered, ensure_ascii=False), "tools")


def _refuse_spelled(loaded: ServedModel, text: str, param: str) -> None:
    vocab = loaded.tokenizer
    assert vocab is not None
    if text and vocab.tokenize(text, False, parse_special=True) != vocab.tokenize(
            text, False, parse_special=False):
        what = "A tool definition" if param == "tools" else f"`{param}`"
        raise InvalidRequest(f"{what} spells one of the model's special tokens", param=param)


def _tool_grammar(body: ChatCompletionRequest, plan: tools.ToolPlan, vocab: Vocabulary) -> str:
    if body.grammar is not None:
        raise InvalidRequest("`grammar` cannot be combined with `tool_choice` required or a "
                             "named function (a grammar of their own holds the answer)",
                             param="grammar")
    if body.response_format is not None and body.response_format.type != "text":
        raise InvalidRequest("`tools` and a JSON `response_format` cannot be combined",
                             param="response_format")
    if body.ignore_eos or body.min_tokens:
        param = "ignore_eos" if body.ignore_eos else "min_tokens"
        raise InvalidRequest(f"`{param}` cannot be combined with `tools`", param=param)
    try:
        grammar = vocab.schema_grammar(json.dumps(plan.schema))
    except Exception as exc:  # the converter raises whatever it meets; all of it is the schema's
        raise InvalidRequest(f"Unsupported tool parameters schema: {exc}", param="tools") from None
    if not vocab.grammar_is_valid(grammar):
        raise InvalidRequest("llama.cpp could not use the grammar made from these tools",
                             param="tools")
    return grammar


def build_completion_request(
    loaded: ServedModel, body: CompletionRequest, session_header: str | None, client: str = ""
) -> GenerationRequest:
    prompt: str | list[str | int] | None = body.prompt
    if prompt is None:
        raise InvalidRequest("`prompt` is required", param="prompt")
    if isinstance(prompt, list) and any(isinstance(p, str) for p in prompt):
        if len(prompt) != 1:
            raise InvalidRequest("Send one prompt per request: a string or a list of token ids",
                                 param="prompt")
        prompt = str(prompt[0])
    vocab = loaded.tokenizer
    assert vocab is not None  # a ready model has its vocabulary
    fill_in = body.suffix is not None and (body.suffix != "" or vocab.fim_tokens is not None)
    if isinstance(prompt, str):
        checks.text_fits(loaded.n_ctx_seq, len(prompt) + len(body.suffix or ""), "prompt")
    if isinstance(prompt, str):
        # code around the insertion point is text, even where it spells a special token
        tokens = vocab.tokenize(prompt, add_special=not fill_in, parse_special=not fill_in)
    else:
        tokens = [int(t) for t in prompt]
        checks.token_ids(tokens, vocab, "prompt")
    hole = None
    if fill_in:
        tokens = _fill_in_the_middle(loaded, tokens, body.suffix or "")
        if isinstance(prompt, str):
            hole = hole_around(prompt, body.suffix or "")
    elif isinstance(prompt, str):
        hole = hole_in_prompt(vocab, vocab.fim_tokens, prompt)
    request = _finish_building(loaded, body, body.max_tokens, tokens, "prompt", session_header,
                               client)
    return msgspec.structs.replace(request, hole=hole) if hole is not None else request


def _fill_in_the_middle(loaded: ServedModel, prefix: list[int], suffix: str) -> list[int]:
    """The prompt for text to insert between `prefix` and `suffix`, in the prefix-suffix-middle
    order FIM models are trained on (and llama-server sends): the model writes the middle."""
    vocab = loaded.tokenizer
    assert vocab is not None
    pre, suf, mid = checks.fim_markers(vocab, loaded.id, "suffix",
                                       "complete with a `suffix` (leave it out)")
    bos = checks.fim_bos(vocab)
    suffix_tokens = vocab.tokenize(suffix, add_special=False, parse_special=False)
    return [*bos, pre, *prefix, suf, *suffix_tokens, mid]
