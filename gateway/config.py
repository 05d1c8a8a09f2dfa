"""The configuration: frozen msgspec Structs decoded from a TOML file.

Owns the shape of a config file and its validation. It reads nothing but the file it is given and
never touches models or the network; turning a source into a GGUF path is `model_source`'s job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from gateway.engine.settings import (ContextSettings, SchedulerSettings, SessionCacheSettings,
                                     SpeculationSettings)


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the field."""


class ModelSource(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where a GGUF comes from: exactly one of `path`, `package`, `parts` (packages that each ship
    a piece of it, in order; with its `sha256`) or `hf` ("org/repo:file.gguf")."""

    path: str | None = None
    package: str | None = None
    parts: list[str] | None = None
    hf: str | None = None
    revision: str | None = None
    sha256: str | None = None


class GpuConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A GPU declared by hand, for machines where NVML can't tell (or for planning elsewhere)."""

    index: int
    memory_gib: float
    name: str = "GPU"
    vendor: Literal["nvidia", "amd"] = "nvidia"


class ReasoningConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """[models.reasoning]: a thinking model's defaults, for requests that name none."""

    # "none" turns thinking off where the template can (Qwen3's enable_thinking), else closes
    # the block at once; gpt-oss's levels are low/medium/high
    effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    budget: Annotated[int, msgspec.Meta(ge=0)] | None = None  # thinking tokens per answer
    format: Literal["auto", "none"] = "auto"  # "none": the thinking stays in the answer's text
    # once a thinking answer is whole, compute the next turn's prompt (the conversation with the
    # answer as its template renders history, thinking dropped) while the user reads it
    prefill_next_turn: bool = True


class ModelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    source: ModelSource
    aliases: list[str] = []
    replicas: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    gpus: Literal["auto"] | list[int] = "auto"
    tensor_split: list[float] = []
    load_at_start: bool = True
    n_gpu_layers: int = -1  # layers on the GPU when placed on one; -1: all
    chat_template: str | None = None
    # a Jinja file that replaces the GGUF's own template (llama-server's --chat-template-file)
    chat_template_file: str | None = None
    chat_template_kwargs: dict[str, Any] = {}  # variables for the chat template (requests add)
    reasoning: ReasoningConfig = ReasoningConfig()  # [models.reasoning]
    context: ContextSettings = ContextSettings()  # [models.context]
    scheduling: SchedulerSettings = SchedulerSettings()  # [models.scheduling]
    session_cache: SessionCacheSettings = SessionCacheSettings()  # [models.session_cache]
    speculation: SpeculationSettings = SpeculationSettings()  # [models.speculation]
    # llama.cpp's extra CPU buffer types (AMX, repacked weights): "auto" uses them and, when the
    # engine dies by a signal before it is ready, starts it once more without them
    cpu_extra_buffers: Literal["auto"] | bool = "auto"
    embeddings: bool = False  # also serve /v1/embeddings (chat and completions go on)
    # idle this long (no request running or arriving): its engines stop and free their memory
    # (`sleeping`) until the next request wakes it; unset: resident for good
    keep_alive_s: Annotated[float, msgspec.Meta(gt=0)] | None = None


class ServerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    # keys for the API (all but /health) and, separately, for /admin; each also from a file (one
    # per line) or an environment variable (comma-separated)
    api_keys: list[str] = []
    api_keys_file: str | None = None
    api_keys_env: str | None = None
    admin_keys: list[str] = []
    admin_keys_file: str | None = None
    admin_keys_env: str | None = None
    allowed_hosts: list[str] = []  # host names the server answers to, besides localhost and IPs
    cors_origins: list[str] = []  # web origins allowed to call it from a browser
    max_requests_per_client: Annotated[int, msgspec.Meta(ge=0)] = 32  # in flight at once per API key (or address); 0: no limit
    cache_dir: str = "~/.cache/gateway"
    reserved_gpus: list[int] = []  # kept free for other work (fine-tuning, games)
    drain_timeout_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 10.0
    # host RAM for saved conversations, shared by every engine's session cache (each model's
    # `session_cache.ram_mb` still caps its own replicas); unset: a quarter of the host's RAM
    host_ram_mb: Annotated[float, msgspec.Meta(ge=0)] | None = None
    # engines loading at once; 0: one at a time on a small host (< 8 GiB RAM), else all at once
    parallel_loads: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0
    # GPU memory each engine process costs on each GPU it uses beyond its model (the CUDA or
    # ROCm context), kept free by placement
    gpu_context_mb: Annotated[float, msgspec.Meta(ge=0)] = 400
    # "auto": the GPUs the drivers report (NVML, rocm-smi, amdgpu sysfs), else the [[gpus]]
    # declared; "declared": only those declared (plan for other cards, or keep drivers out of it)
    gpu_discovery: Literal["auto", "declared"] = "auto"


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    models: list[ModelConfig]
    server: ServerConfig = ServerConfig()
    gpus: list[GpuConfig] = []


def decode_config(text: str, origin: str = "<config>") -> Config:
    try:
        config = msgspec.toml.decode(text, type=Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
    _check(config, origin)
    return config


def load_config(path: str | Path) -> Config:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config: {exc.strerror}") from None
    return decode_config(text, str(file))


def _check(config: Config, origin: str) -> None:
    if not config.models:
        raise ConfigError(f"{origin}: `models` is empty - at `$.models`")
    names: set[str] = set()
    for index, model in enumerate(config.models):
        where = f"$.models[{index}]"
        source = model.source
        if sum(x is not None for x in (source.path, source.package, source.parts, source.hf)) != 1:
            raise ConfigError(f"{origin}: give exactly one of `path`, `package`, `parts` or `hf` - "
                              f"at `{where}.source`")
        if source.parts is not None and (not source.parts or source.sha256 is None):
            raise ConfigError(f"{origin}: `parts` needs at least one package and the whole "
                              f"file's `sha256` - at `{where}.source`")
        if source.hf is not None and ":" not in source.hf:
            raise ConfigError(
                f"{origin}: `hf` is \"org/repo:file.gguf\" - at `{where}.source.hf`"
            )
        if model.context.cache_type_v != "f16" and model.context.flash_attn == "off":
            raise ConfigError(f"{origin}: a quantized V cache needs flash attention (`flash_attn` "
                              f"\"auto\" or \"on\") - at `{where}.context.cache_type_v`")
        c = model.context
        if c.n_ctx_min > c.n_ctx_max or c.parallel_min > c.parallel_max:
            raise ConfigError(f"{origin}: a floor above its ceiling (`n_ctx_min` > `n_ctx_max` or "
                              f"`parallel_min` > `parallel_max`) - at `{where}.context`")
        spec = model.speculation
        if spec.kind == "draft" and not spec.draft:
            raise ConfigError(f"{origin}: speculation kind \"draft\" needs `draft`, the draft "
                              f"model's GGUF path - at `{where}.speculation.draft`")
        if spec.ngram_min > spec.ngram_max or spec.n_min > spec.n_max:
            raise ConfigError(f"{origin}: a floor above its ceiling (`ngram_min` > `ngram_max` "
                              f"or `n_min` > `n_max`) - at `{where}.speculation`")
        slots = c.parallel_min if c.parallel == "auto" else c.parallel
        if model.scheduling.reserved_slots >= slots:
            raise ConfigError(f"{origin}: `reserved_slots` must be below `context.parallel` - at "
                              f"`{where}.scheduling.reserved_slots`")
        for name in (model.id, *model.aliases):
            if name in names:
                raise ConfigError(f"{origin}: model name `{name}` is used twice - at `{where}`")
            names.add(name)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


# each field goes to the table of the struct that declares it ([models.context], ...)
_TABLES = {"context": ContextSettings, "scheduling": SchedulerSettings,
           "session_cache": SessionCacheSettings, "reasoning": ReasoningConfig,
           "speculation": SpeculationSettings}


def model_entry(model_id: str, path: str | Path, **fields: object) -> str:
    """A `[[models]]` entry as TOML, for programs that write configs (benchmarks, tests): top-level
    fields as given, fields of the nested settings (`n_ctx`, `policy`, `ram_mb`, ...) in their own
    tables."""
    top = [
        "[[models]]",
        f'id = "{model_id}"',
        f'source = {{ path = "{path}" }}',
    ]
    tables: dict[str, list[str]] = {name: [] for name in _TABLES}
    for key, value in fields.items():
        table = next((name for name, struct in _TABLES.items() if key in struct.__struct_fields__),
                     None)
        (tables[table] if table else top).append(f"{key} = {_toml(value)}")
    for name, lines in tables.items():
        if lines:
            top += [f"[models.{name}]", *lines]
    return "\n".join(top) + "\n"
