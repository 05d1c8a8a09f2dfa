"""What a model is, as catalogues show it (Ollama's `/api/tags`, `/api/show`): its family,
parameter size, quantization, file size and a digest, read from its GGUF's header without
loading it. A model whose file is not resolved yet (a package
or a hub file never used) says `unknown`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from gateway.fleet.served_model import ServedModel
from gateway.placement.gguf_header import GgufError, read_header


# llama.cpp's `llama_ftype` numbers (`general.file_type`), by the names quantizations go by
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
              10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
              16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
              22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
              28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
              37: "TQ2_0", 38: "MXFP4"}


@dataclass(frozen=True)
class ModelCard:
    family: str
    parameter_size: str
    quantization: str
    file_size: int
    digest: str  # the config's sha256 when it pins one, else one of the file's identity


def _file(served: ServedModel) -> Path | None:
    if served.path is not None:
        return served.path
    source = served.config.source
    if source.path is not None and Path(source.path).expanduser().is_file():
        return Path(source.path).expanduser()
    return None


def card_of(served: ServedModel) -> ModelCard:
    path = _file(served)
    family, size, quant = "unknown", "unknown", "unknown"
    if path is not None:
        try:
            values = read_header(path).values
        except (GgufError, OSError):
            values = {}
        family = str(values.get("general.architecture", family))
        size = str(values.get("general.size_label", size))
        file_type = values.get("general.file_type")
        quant = FILE_TYPES.get(file_type, quant) if isinstance(file_type, int) else quant
    file_size = path.stat().st_size if path is not None else 0
    digest = served.config.source.sha256 or hashlib.sha256(
        f"{served.id}:{path}:{file_size}".encode()).hexdigest()
    return ModelCard(family, size, quant, file_size, digest)
