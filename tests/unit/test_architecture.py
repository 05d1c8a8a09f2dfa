"""Imports go one way: api -> serving -> engine. Only api/ (and the CLI) import litestar or
uvicorn; only the llama backend imports llama_cpp; the engine never imports serving or api."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "gateway"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules() -> list[tuple[str, set[str]]]:
    return [(str(p.relative_to(PACKAGE)), imports_of(p)) for p in sorted(PACKAGE.rglob("*.py"))]


def test_engine_never_imports_upper_layers() -> None:
    for name, imports in modules():
        if name.startswith("engine/"):
            bad = {i for i in imports if i.startswith(("gateway.api", "gateway.serving", "litestar"))}
            assert not bad, f"{name} imports {bad}"


def test_only_the_backend_imports_llama_cpp() -> None:
    users = {name for name, imports in modules() if any(i.split(".")[0] == "llama_cpp" for i in imports)}
    assert users and all(name.startswith("engine/llama_backend/") for name in users), users


def test_only_the_web_layer_imports_litestar() -> None:
    for name, imports in modules():
        if any(i.split(".")[0] in ("litestar", "uvicorn") for i in imports):
            assert name.startswith("api/") or name == "cli.py", name


def test_serving_never_imports_the_web_layer() -> None:
    for name, imports in modules():
        if name.startswith("serving/"):
            from_api = {i for i in imports if i.startswith("gateway.api")}
            assert not from_api, f"{name} imports {from_api}"
    wire = imports_of(PACKAGE / "wire.py")
    assert not any(i.startswith(("litestar", "gateway.")) for i in wire)


def test_the_web_layer_never_imports_the_engine() -> None:
    for name, imports in modules():
        if name.startswith("api/"):
            bad = {i for i in imports if i.startswith("gateway.engine")}
            assert not bad, f"{name} imports {bad}"


def test_modules_stay_small() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 420, f"{path} is a god file"
