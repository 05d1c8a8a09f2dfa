"""Turns a model's configured source into a local GGUF path.

A `path` is used as it is. A `package` is a Python package that ships a GGUF (Gemma's); `parts` are
packages that each ship one piece of a GGUF (`get_part_path()`; the embedded default's): either is
assembled once into the cache directory and checksum-verified; later starts reuse the verified file
without hashing it again. Knows nothing of llama.cpp or of serving.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from gateway.config import ModelConfig


class ModelSourceError(Exception):
    """The configured GGUF cannot be found or does not verify."""


def resolve_model_path(
    model: ModelConfig, cache_dir: str, report: Callable[[str], None] = lambda _msg: None,
    local_only: bool = False,
) -> Path:
    """The GGUF's local path. `local_only`: never download (a hub file not yet cached is an error)."""
    source = model.source
    if source.path is not None:
        path = Path(source.path).expanduser()
        if not path.is_file():
            raise ModelSourceError(f"model {model.id!r}: GGUF file not found: {path}")
        if source.sha256 is not None:
            _verify(path, source.sha256, model.id)
        return path
    cache = Path(cache_dir).expanduser()
    _private_dir(cache)
    if source.hf is not None:
        _private_dir(cache / "hf")
        path = _from_hub(model.id, source.hf, source.revision, cache, local_only)
        _private_file(path)
        if source.sha256 is not None:
            _verify(path, source.sha256, model.id)
        return path
    if source.parts is not None:
        assert source.sha256 is not None  # the config requires it with `parts`
        return _from_parts(model.id, source.parts, source.sha256, cache, report)
    assert source.package is not None
    return _from_package(model.id, source.package, cache, report)


def _private_dir(path: Path) -> None:
    """What the gateway writes is the user's alone (0700 directories, 0600 files)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(path, 0o700)
    except PermissionError:  # a shared directory someone else owns: leave its mode alone
        pass


def _private_file(path: Path) -> None:
    try:
        os.chmod(path.resolve(), 0o600)
    except PermissionError:
        pass


def _from_hub(model_id: str, ref: str, revision: str | None, cache_dir: Path,
              local_only: bool = False) -> Path:
    """A file of a Hugging Face repo, downloaded once into the cache (resumable, with a progress
    bar); HF_ENDPOINT points it at a mirror."""
    repo, _, filename = ref.partition(":")
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError:
        raise ModelSourceError(f"model {model_id!r}: huggingface_hub is not installed") from None
    try:
        return Path(hf_hub_download(repo, filename, revision=revision, cache_dir=str(cache_dir / "hf"),
                                    local_files_only=local_only))
    except LocalEntryNotFoundError as exc:  # the hub could not be reached and nothing is cached
        raise ModelSourceError(
            f"model {model_id!r}: cannot download {ref} and it is not in the cache "
            f"({cache_dir / 'hf'}); are you offline? ({exc})"
        ) from None
    except (EntryNotFoundError, RepositoryNotFoundError) as exc:
        raise ModelSourceError(f"model {model_id!r}: {ref} not found on the hub ({type(exc).__name__})"
                               ) from None
    except Exception as exc:  # offline, DNS, TLS, HTTP errors: say so plainly
        raise ModelSourceError(
            f"model {model_id!r}: cannot download {ref} and it is not in the cache "
            f"({cache_dir / 'hf'}); are you offline? ({type(exc).__name__}: {exc})"
        ) from None


def _from_package(
    model_id: str, package: str, cache_dir: Path, report: Callable[[str], None]
) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ModelSourceError(
            f"model {model_id!r}: package {package!r} is not installed ({exc})"
        ) from None
    name = getattr(module, "MODEL_NAME", None)
    expected = getattr(module, "EXPECTED_SHA256", None)
    assemble = getattr(module, "assemble", None)
    if not (isinstance(name, str) and isinstance(expected, str) and callable(assemble)):
        raise ModelSourceError(
            f"model {model_id!r}: package {package!r} does not ship a GGUF "
            "(needs MODEL_NAME, EXPECTED_SHA256 and assemble(path))"
        )
    target = cache_dir / package / name
    if _verified(target, expected):
        return target
    report(f"assembling {name} from package {package} into {target.parent}")
    _private_dir(target.parent)
    partial = _partial(target)
    try:
        assemble(partial, overwrite=True)
    except Exception as exc:  # the package's own failure, e.g. a checksum mismatch
        partial.unlink(missing_ok=True)
        raise ModelSourceError(f"model {model_id!r}: assembling from {package!r} failed: {exc}") from None
    return _install(partial, target, expected, model_id)


def _from_parts(model_id: str, packages: list[str], expected: str, cache_dir: Path,
                report: Callable[[str], None]) -> Path:
    """The GGUF the packages' pieces make, concatenated in order (each package's
    `get_part_path()`), with progress; a package missing, or a piece it lacks, is named."""
    target = cache_dir / "parts" / packages[0] / f"{expected.lower()[:16]}.gguf"
    if _verified(target, expected):
        return target
    pieces = [_part_path(model_id, package) for package in packages]
    total = sum(piece.stat().st_size for piece in pieces)
    report(f"model {model_id}: assembling {total / 2**20:.0f} MiB from {len(pieces)} packages "
           f"into {target}")
    _private_dir(target.parent)
    partial = _partial(target)
    done, shown = 0, 0
    try:
        with partial.open("wb") as out:
            for number, piece in enumerate(pieces, 1):
                with piece.open("rb") as part:
                    for block in iter(lambda: part.read(8 << 20), b""):
                        out.write(block)
                        done += len(block)
                        if done * 10 // total > shown:  # every tenth
                            shown = done * 10 // total
                            report(f"model {model_id}: assembling {shown * 10}% "
                                   f"(part {number} of {len(pieces)})")
        return _install(partial, target, expected, model_id,
                        f"the file assembled from {', '.join(packages)} (all of one release?)")
    finally:
        partial.unlink(missing_ok=True)


def _part_path(model_id: str, package: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ModelSourceError(
            f"model {model_id!r}: part package {package!r} is not installed ({exc})") from None
    get_path = getattr(module, "get_part_path", None)
    if not callable(get_path):
        raise ModelSourceError(
            f"model {model_id!r}: package {package!r} ships no model part (needs get_part_path())")
    path = Path(get_path())
    if not path.is_file():
        raise ModelSourceError(f"model {model_id!r}: package {package!r} lacks its part {path}")
    return path


def _partial(target: Path) -> Path:
    """Where a file is written before it verifies: unique, so two writers never mix."""
    return target.with_name(f"{target.name}.{os.getpid()}.{id(target):x}.partial")


def _verified(target: Path, expected: str) -> bool:
    marker = target.with_name(target.name + ".verified")
    return target.is_file() and _marker_matches(marker, target, expected)


def _install(partial: Path, target: Path, expected: str, model_id: str,
             made_from: str | None = None) -> Path:
    """The written file moved into place once its checksum matches, with a marker that spares
    the next start the hashing; a mismatch is an error and the file is not used."""
    try:
        _verify(partial, expected, model_id, made_from)
    except ModelSourceError:
        partial.unlink(missing_ok=True)
        raise
    _private_file(partial)
    os.replace(partial, target)
    stat = target.stat()
    marker = target.with_name(target.name + ".verified")
    marker.write_text(json.dumps({"sha256": expected, "size": stat.st_size, "mtime": stat.st_mtime}))
    _private_file(marker)
    return target


def _marker_matches(marker: Path, target: Path, expected: str) -> bool:
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    stat = target.stat()
    return bool(
        recorded.get("sha256") == expected
        and recorded.get("size") == stat.st_size
        and recorded.get("mtime") == stat.st_mtime
    )


def _verify(path: Path, expected: str, model_id: str, made_from: str | None = None) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected.lower():
        raise ModelSourceError(
            f"model {model_id!r}: {made_from or path} has sha256 {digest.hexdigest()}, "
            f"expected {expected}")
