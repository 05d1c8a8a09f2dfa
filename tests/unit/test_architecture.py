"""Imports go one way: api -> frontend -> fleet -> engine (protocol: wire types, beside them all).
Only api/ (and the CLI) import litestar or uvicorn; only the llama backend imports llama_cpp, and
it imports nothing else of the gateway; the frontend never reaches into the engine's insides; no
module imports itself back through others (TYPE_CHECKING imports count); folders and modules stay
small."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "gateway"
MAX_MODULES_PER_FOLDER = 12
MAX_LINES = 420


def module_name(path: Path) -> str:
    parts = ("gateway", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every module it imports, anywhere in it; `from package import module` names the module."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names
                         if f"{node.module}.{a.name}" in MODULES)
    return names


def modules() -> list[tuple[str, set[str]]]:
    return [(str(p.relative_to(PACKAGE)), imports_of(p)) for p in MODULES.values()]


def test_engine_never_imports_upper_layers() -> None:
    for name, imports in modules():
        if name.startswith("engine/"):
            bad = {i for i in imports if i.startswith(("gateway.", "litestar"))
                   and not i.startswith("gateway.engine")}
            assert not bad, f"{name} imports {bad}"


def test_the_llama_backend_is_a_leaf() -> None:
    for name, imports in modules():
        if name.startswith("engine/llama_backend/"):
            bad = {i for i in imports if i.startswith("gateway.")
                   and not i.startswith("gateway.engine.llama_backend")}
            assert not bad, f"{name} imports {bad}"


def test_only_the_backend_imports_llama_cpp() -> None:
    users = {name for name, imports in modules() if any(i.split(".")[0] == "llama_cpp" for i in imports)}
    assert users and all(name.startswith("engine/llama_backend/") for name in users), users


def test_only_the_web_layer_imports_litestar() -> None:
    for name, imports in modules():
        if any(i.split(".")[0] in ("litestar", "uvicorn") for i in imports):
            assert name.startswith("api/") or name == "cli.py", name


def test_the_frontend_sees_only_the_engine_s_request_and_event_types() -> None:
    allowed = ("gateway.engine.events", "gateway.engine.requests", "gateway.engine.hole_end",
               "gateway.engine.kv.session_key")
    for name, imports in modules():
        if name.startswith("frontend/"):
            bad = {i for i in imports if i.startswith(("gateway.engine", "gateway.api"))
                   and i not in allowed and i != "gateway.engine.kv"}
            assert not bad, f"{name} imports {bad}"


def test_the_fleet_knows_no_protocol() -> None:
    for name, imports in modules():
        if name.startswith(("fleet/", "placement/")):
            bad = {i for i in imports
                   if i.startswith(("gateway.frontend", "gateway.api", "gateway.protocol"))}
            assert not bad, f"{name} imports {bad}"


def test_protocols_are_wire_types_only() -> None:
    for name, imports in modules():
        if name.startswith("protocol/"):
            bad = {i for i in imports if i.startswith(("gateway.", "litestar"))
                   and not i.startswith("gateway.protocol")}
            assert not bad, f"{name} imports {bad}"


def test_the_web_layer_never_imports_the_engine() -> None:
    for name, imports in modules():
        if name.startswith("api/"):
            bad = {i for i in imports if i.startswith("gateway.engine")}
            assert not bad, f"{name} imports {bad}"


def _cycle() -> list[str] | None:
    """One import cycle among the gateway's modules, if there is one."""
    graph = {name: {i for i in imports_of(path) if i in MODULES and i != name}
             for name, path in MODULES.items()}
    # a package's __init__ is imported with any of its modules: only real edges count
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)) is not None:
            return found
    return None


def test_no_import_cycle() -> None:
    assert _cycle() is None, " -> ".join(_cycle() or [])


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path) -> None:
    """The check above can fail: two modules importing each other are found."""
    global MODULES
    saved = MODULES
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gateway import b\n")
    b.write_text("import gateway.a\n")
    MODULES = {"gateway.a": a, "gateway.b": b}
    try:
        assert _cycle() == ["gateway.a", "gateway.b", "gateway.a"]
    finally:
        MODULES = saved


def test_no_flat_folder() -> None:
    per_folder = Counter(p.parent for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
    crowded = {str(folder.relative_to(PACKAGE.parent)): n for folder, n in per_folder.items()
               if n > MAX_MODULES_PER_FOLDER}
    assert not crowded, crowded


def test_modules_stay_small() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= MAX_LINES, f"{path} is a god file"
