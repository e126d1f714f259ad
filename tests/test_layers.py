"""The package's layers: data flows one way, so a module imports only from the layers below its own, inside
functions too (the engine receives task objects and imports no task module; the schema imports neither)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "aclnet"
RANKS = {
    "errors": -1,
    "fileio": 0, "plain_yaml": 0, "progress": 0,
    "array_files": 1,
    "skeleton": 1,
    "data": 2, "losses": 2, "models": 2,
    "config": 3,
    "engine": 4,
    "tasks": 5,
    "inference": 6, "analysis": 6,
    "cli": 7, "__init__": 7,
}
"""Each top-level module or subpackage of `aclnet` and its layer (lower layers never import higher ones)."""


def _imported(path: Path) -> set[str]:
    """The `aclnet` layers a file imports, wherever in the file the import stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {name.split(".")[1] for name in names if name.startswith("aclnet.")}
    return found


def test_every_module_has_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
            if p.suffix == ".py" or (p.is_dir() and any(p.glob("*.py")))}
    assert tops == set(RANKS)


def test_no_layer_imports_a_layer_above_or_beside_it() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        own = parts[0].removesuffix(".py")
        for layer in _imported(path) - {own}:
            if RANKS[layer] >= RANKS[own]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports aclnet.{layer}")
    assert wrong == []
