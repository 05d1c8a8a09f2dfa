"""The `/infill` prompt, laid out token for token as llama.cpp's server lays it out
(`format_prompt_infill` in tools/server/server-common.cpp), so a model sees from the gateway
exactly what it sees from llama-server:

    [extra chunks] [BOS] FIM_PRE prefix prompt FIM_SUF suffix FIM_MID

With the repo-level tokens (`fim_rep`, `fim_sep`; Qwen2.5-Coder and others), the extra chunks are
`FIM_REP "myproject\\n" (FIM_SEP filename "\\n" text)* FIM_SEP "filename\\n"`; without them each
chunk follows a plain "--- snippet ---" line. The prefix keeps its last 3/4 of the FIM window, the
suffix its first 1/4 (less the typed prompt), and the extra chunks fill what the context leaves
(their newest part, at the end, is kept). The window is llama-server's batch (2048), or half the
context where that is smaller (llama-server would leave no room for the extra chunks there).
Client text never spells a special token. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.engine.hole_end import Hole, hole_around

FIM_WINDOW = 2048  # llama-server's default batch: the prefix and suffix fit in it
SNIPPET_SEPARATOR = "\n\n--- snippet ---\n\n"


@dataclass(frozen=True)
class FimTokens:
    pre: int
    suf: int
    mid: int
    rep: int | None = None  # repository name follows
    sep: int | None = None  # a file name follows


class Vocabulary(Protocol):
    def tokenize(self, text: str, add_special: bool, parse_special: bool = True) -> list[int]: ...

    def token_bytes(self, token: int, special: bool = False) -> bytes: ...


@dataclass(frozen=True)
class ExtraText:
    filename: str
    text: str


def infill_tokens(vocab: Vocabulary, fim: FimTokens, bos: int | None, prefix: str, suffix: str,
                  extra: list[ExtraText], prompt: str, n_ctx: int, n_predict: int) -> list[int]:
    def text(value: str) -> list[int]:
        return vocab.tokenize(value, add_special=False, parse_special=False)

    window = min(FIM_WINDOW, n_ctx // 2)  # a small context keeps room for the extra chunks
    prefix_tokens, suffix_tokens, prompt_tokens = text(prefix), text(suffix), text(prompt)
    prefix_take = min(len(prefix_tokens), 3 * (window // 4))
    suffix_take = min(len(suffix_tokens), max(0, window // 4 - (2 + len(prompt_tokens))))

    extra_tokens: list[int] = []
    if fim.rep is not None:
        extra_tokens += [fim.rep, *text("myproject\n")]
    for chunk in extra:
        if fim.sep is not None:
            extra_tokens += [fim.sep, *text(chunk.filename + "\n")]
        else:
            extra_tokens += text(SNIPPET_SEPARATOR)
        extra_tokens += text(chunk.text)
    if fim.sep is not None:
        extra_tokens += [fim.sep, *text("filename\n")]
    extra_take = min(max(0, n_ctx - window - 2 * max(n_predict, 0)), len(extra_tokens))

    head = [fim.pre, *prefix_tokens[len(prefix_tokens) - prefix_take:], *prompt_tokens]
    tail = [fim.suf, *suffix_tokens[:suffix_take]]
    lead = [bos] if bos is not None else []
    kept_extra = extra_tokens[len(extra_tokens) - extra_take:] if extra_take else []
    return [*kept_extra, *lead, *head, *tail, fim.mid]


def hole_in_prompt(vocab: Vocabulary, fim: tuple[int, int, int] | None, prompt: str) -> Hole | None:
    """The hole of a prompt a client rendered with the model's FIM markers itself (Tabby, and
    Continue's llama.cpp provider, send `<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>` to
    `/completion`); None when the prompt is not one."""
    if fim is None:
        return None
    pre, suf, mid = (vocab.token_bytes(t, special=True).decode("utf-8", "replace") for t in fim)
    if not (pre and suf and mid) or not prompt.endswith(mid):
        return None
    head, found_pre, rest = prompt[: len(prompt) - len(mid)].partition(pre)
    prefix, found_suf, suffix = rest.partition(suf)
    if not (found_pre and found_suf):
        return None
    return hole_around(prefix, suffix)
