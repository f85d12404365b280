"""The house's structure: layers that point one way, no import cycles, and no god modules or
functions.

Imports are read from the source (every ``import``, including those inside functions and
under ``TYPE_CHECKING``), so a back-arrow or a cycle fails here even if no test happens to run
it (a deferred import only hides a cycle from the interpreter, not from the reader).
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each package and the packages it may import; anything else of the project is a back-arrow.
LAYERS: dict[str, set[str]] = {
    "confkit": set(),
    "cloud_client": {"confkit"},
    "edge_runtime": {"confkit", "cloud_client"},
    "converter": {"confkit", "cloud_client", "edge_runtime"},
    "benchmarks": {"confkit", "cloud_client", "edge_runtime", "converter"},
    "foggen": {"confkit", "cloud_client", "edge_runtime", "converter", "benchmarks"},
    "testkit": {"confkit", "cloud_client", "edge_runtime", "converter", "benchmarks"},
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def back_arrows(root: Path = ROOT) -> list[str]:
    found = []
    for package, allowed in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, target in imported(path):
                if target in LAYERS and target != package and target not in allowed:
                    found.append(f"{path.relative_to(root)}:{line} imports {target}")
    return found


def test_layers_point_one_way() -> None:
    assert back_arrows() == []


def test_a_back_arrow_is_caught(tmp_path: Path) -> None:
    """The check itself can fail: a runtime module importing the CLI inside a function."""
    (tmp_path / "edge_runtime").mkdir()
    (tmp_path / "edge_runtime" / "sneaky.py").write_text(
        "def f():\n    from foggen.cli import main\n    return main\n"
    )
    assert back_arrows(tmp_path) == ["edge_runtime/sneaky.py:2 imports foggen"]


def module_name(path: Path, root: Path) -> str:
    """``pkg/sub/mod.py`` -> ``pkg.sub.mod``; a package's ``__init__`` is the package itself."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, known: set[str]) -> str | None:
    """The project module ``name`` names, else its longest prefix that is one (an attribute
    imported from a module is an import of that module)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def module_imports(path: Path, root: Path, known: set[str]) -> Iterator[tuple[int, str]]:
    """(line, project module) of every import in the file: absolute and relative, at any depth;
    ``from pkg import sub`` is an import of ``pkg.sub`` when that is a module, else of ``pkg``."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            subs = [f"{base}.{alias.name}" for alias in node.names]
            names = [sub if sub in known else base for sub in subs]
        else:
            continue
        for name in names:
            target = _resolve(name, known)
            if target is not None and target != me:
                yield node.lineno, target


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    """module -> {imported project module: first line importing it}, over every package."""
    paths = {module_name(p, root): p for pkg in LAYERS for p in sorted((root / pkg).rglob("*.py"))}
    known = set(paths)
    graph: dict[str, dict[str, int]] = {}
    for name, path in paths.items():
        edges = graph.setdefault(name, {})
        for line, target in module_imports(path, root, known):
            edges[target] = min(line, edges.get(target, line))
    return graph


def _shortest_cycle(graph: dict[str, dict[str, int]], start: str) -> list[str] | None:
    """The shortest path start -> ... -> start (breadth first), without the closing start."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for target in sorted(graph.get(current, {})):
            if target == start:
                path = [current]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return path[::-1]
            if target not in came_from:
                came_from[target] = current
                queue.append(target)
    return None


def cycles(root: Path = ROOT) -> list[str]:
    """Every module on a cycle, as the shortest chain through it, each arrow from
    ``module:line`` (the line of the import), e.g. ``a:3 -> b:7 -> a``; each chain once."""
    graph = import_graph(root)
    found: dict[tuple[str, ...], str] = {}
    for start in sorted(graph):
        chain = _shortest_cycle(graph, start)
        if chain is None:
            continue
        first = chain.index(min(chain))
        chain = chain[first:] + chain[:first]  # the same cycle from any start reads the same
        hops = [f"{m}:{graph[m][n]}" for m, n in zip(chain, [*chain[1:], chain[0]], strict=True)]
        found[tuple(chain)] = " -> ".join([*hops, chain[0]])
    return sorted(found.values())


def test_no_import_cycles() -> None:
    found = cycles()
    assert not found, "import cycles (module:line of each import):\n" + "\n".join(found)


def test_a_cycle_is_caught(tmp_path: Path) -> None:
    """The check itself can fail: two modules importing each other, one inside a function
    (absolute, ``from package import module``), the other under TYPE_CHECKING (relative)."""
    package = tmp_path / "edge_runtime"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from edge_runtime import b\n    return b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from . import a\n"
    )
    (package / "c.py").write_text("from edge_runtime.a import f\nfrom edge_runtime import b\n")
    assert import_graph(tmp_path)["edge_runtime.c"] == {"edge_runtime.a": 1, "edge_runtime.b": 2}
    assert cycles(tmp_path) == ["edge_runtime.a:2 -> edge_runtime.b:4 -> edge_runtime.a"]


def test_every_package_is_in_a_layer() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(LAYERS)


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_no_module_or_function_is_too_long(package: str) -> None:
    too_long = []
    for path in modules(package):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length}")
    assert too_long == []
