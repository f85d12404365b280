"""The house's structure: layers that point one way, and no god modules or functions.

Imports are read from the source (every ``import``, including those inside functions and
under ``TYPE_CHECKING``), so a back-arrow fails here even if no test happens to run it.
"""

from __future__ import annotations

import ast
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
