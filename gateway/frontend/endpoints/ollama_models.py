"""Ollama's catalogue routes: `/api/version`, `/api/tags` (every configured model, awake or not),
`/api/ps` (those awake, with when they go to sleep), `/api/show`; and the routes that manage
model files (`pull`, `push`, `create`, `copy`, `delete`), which answer that models come from the
gateway's config (a `pull` of a model the config already serves succeeds: there is nothing to
fetch). Names carry Ollama's `:latest` tag, which clients (Open WebUI) add and expect back."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from gateway.errors import InvalidRequest, ModelNotFound
from gateway.fleet.lifecycle import State
from gateway.fleet.model_card import card_of
from gateway.fleet.registry import ModelRegistry
from gateway.fleet.served_model import ServedModel
from gateway.frontend.endpoints.llama_server import vocabulary
from gateway.frontend import reasoning
from gateway.frontend.prompt.chat_template import template_for
from gateway.frontend.prompt.ollama_request import TAG, model_name
from gateway.protocol import ollama

VERSION = "0.12.6"  # the Ollama API version these routes follow (clients parse it as numbers)
FOREVER = datetime(2318, 1, 1, tzinfo=timezone.utc)  # Ollama's "never expires", roughly


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _details(served: ServedModel) -> ollama.Details:
    card = card_of(served)
    return ollama.Details(format="gguf", family=card.family, families=[card.family],
                          parameter_size=card.parameter_size, quantization_level=card.quantization)


def _entry(served: ServedModel, running: bool = False) -> ollama.ModelEntry:
    card = card_of(served)
    entry = ollama.ModelEntry(name=served.id + TAG, model=served.id + TAG, size=card.file_size,
                              digest=card.digest, details=_details(served))
    if not running:
        entry.modified_at = _iso(datetime.fromtimestamp(served.created, timezone.utc))
        return entry
    keep = served.keep_alive_s
    expires = FOREVER if keep is None else datetime.now(timezone.utc) + timedelta(
        seconds=max(0.0, keep - (time.monotonic() - served.idle_since)))
    entry.expires_at, entry.size_vram = _iso(expires), 0
    entry.context_length = served.n_ctx_seq
    return entry


def version() -> dict[str, str]:
    return {"version": VERSION}


def tags(registry: ModelRegistry) -> ollama.ModelList:
    return ollama.ModelList([_entry(m) for m in registry.models])


def ps(registry: ModelRegistry) -> ollama.ModelList:
    awake = [m for m in registry.models if m.state is State.READY]
    return ollama.ModelList([_entry(m, running=True) for m in awake])


async def show(registry: ModelRegistry, body: ollama.ShowRequest) -> ollama.ShowResponse:
    name = body.model or body.name
    if not name:
        raise InvalidRequest("`model` is required", param="model")
    served = registry.get(model_name(name))
    vocab = await vocabulary(served)
    template = template_for(vocab, served.config.chat_template, served.config.chat_template_file)
    details = _details(served)
    capabilities = ["completion", *(["tools"] if template is not None else []),
                    *(["insert"] if vocab.fim_tokens is not None else []),
                    *(["embedding"] if served.config.embeddings else []),
                    *(["thinking"] if reasoning.format_of(template.source if template else None)
                      else [])]
    return ollama.ShowResponse(
        modelfile=f"# served by the gateway from its config\nFROM {served.id}\n",
        parameters=f"num_ctx {served.n_ctx_seq}", template=template.source if template else "",
        details=details,
        model_info={"general.architecture": details.family,
                    f"{details.family}.context_length": served.n_ctx_seq},
        capabilities=capabilities,
        modified_at=_iso(datetime.fromtimestamp(served.created, timezone.utc)))


def pull(registry: ModelRegistry, name: str | None) -> dict[str, str]:
    if name:
        try:
            registry.get(model_name(name))
        except ModelNotFound:
            raise refused("pull") from None
        return {"status": "success"}  # the config serves it already
    raise refused("pull")


def refused(action: str) -> InvalidRequest:
    return InvalidRequest(f"Models come from the gateway's config ([[models]] in its config file); "
                          f"`{action}` is not available here. Add the model there and restart, "
                          "or load it with POST /admin/models/{id}/load")
