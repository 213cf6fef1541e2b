"""The training app stands on the library's public face: it imports only the names ``surrogate``
exports (its ``__all__``), never a library module's insides."""

from __future__ import annotations

import ast
from pathlib import Path

import surrogate

APP = Path(surrogate.__file__).resolve().parent / "training"


def library_names_used(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for every use of the library in ``source``: ``surrogate.X`` for a name
    read from the package, ``surrogate.mod`` for an import of a library module."""
    used = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("surrogate"):
            if node.module == "surrogate":
                used += [(node.lineno, f"surrogate.{alias.name}") for alias in node.names]
            elif not node.module.startswith("surrogate.training"):
                used.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("surrogate.") and not alias.name.startswith(
                    "surrogate.training"
                ):
                    used.append((node.lineno, alias.name))
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "surrogate"
        ):
            used.append((node.lineno, f"surrogate.{node.attr}"))
    return used


def test_the_walk_sees_every_kind_of_use():
    source = "import surrogate\nfrom surrogate import Sign\nfrom surrogate.hardops import STEP\n"
    source += "import surrogate.fused\nsurrogate.available()\n"
    assert sorted(library_names_used(source)) == [
        (2, "surrogate.Sign"), (3, "surrogate.hardops"), (4, "surrogate.fused"),
        (5, "surrogate.available"),
    ]  # fmt: skip


def test_the_app_uses_only_the_names_surrogate_exports():
    public = {f"surrogate.{name}" for name in surrogate.__all__}
    private = []
    files = sorted(APP.rglob("*.py"))
    assert len(files) > 20  # the walk finds the app
    for path in files:
        for line, name in library_names_used(path.read_text()):
            if name not in public:
                private.append(f"{path.relative_to(APP.parent.parent)}:{line}: {name}")
    assert private == []
