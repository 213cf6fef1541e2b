"""The library is a layer of its own: ``import surrogate`` and each of its modules load torch and
nothing of the training app or its dependencies, and no library module imports the app."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import surrogate

PACKAGE = Path(surrogate.__file__).resolve().parent
APP = "surrogate.training"
APP_DEPENDENCIES = ("hydra", "omegaconf", "pytorch_lightning", "lightning", "torchmetrics",
                    "torchvision", "sklearn", "matplotlib")  # fmt: skip


def library_modules() -> list[str]:
    """Every module of the package outside the training app, by dotted name."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name != APP and not name.startswith(APP + ".") and parts[-1] != "__main__":
            names.append(name)
    return names


def test_the_library_has_the_modules_this_test_walks():
    walked = {
        "surrogate",
        "surrogate.estimators.base",
        "surrogate.audit.cli",
        "surrogate.intercept",
        "surrogate.intercept.mode",
        "surrogate.callable_module",
    }
    assert walked <= set(library_modules())


def test_importing_the_library_loads_no_app_dependency_nor_the_compiler():
    script = f"""
import importlib, json, sys
for name in {library_modules()!r}:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    tops = {name.split(".")[0] for name in loaded}
    assert not tops & set(APP_DEPENDENCIES), sorted(tops & set(APP_DEPENDENCIES))
    assert not [name for name in loaded if name.startswith(APP)]
    # torch.compiler.disable and torch.compile import torch._dynamo, seconds of import time: the
    # library defers both to their first use.
    assert "torch._dynamo" not in loaded


def test_no_library_module_imports_the_app_even_lazily():
    for path in PACKAGE.rglob("*.py"):
        if (PACKAGE / "training") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            bad = [n for n in names if n == APP or n.startswith(APP + ".")]
            bad += [n for n in names if n.split(".")[0] in APP_DEPENDENCIES]
            assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {bad}"
