"""The import graph of app/: no module import cycles (imports inside functions count), and the layers
of pyproject.toml's import-linter contracts hold. Both are shown failing on a broken copy."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def module_cycles(package: str) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a cycle's members."""
    graph = grimp.build_graph(package, cache_dir=None)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(module: str) -> None:
        nonlocal counter
        index[module] = low[module] = counter
        counter += 1
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            members = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                members.append(top)
                if top == module:
                    break
            if len(members) > 1:
                cycles.append(sorted(members))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_app_has_no_module_import_cycles() -> None:
    assert module_cycles("app") == []


def test_a_cycle_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is real: a copy of app/ where a low module imports a high one has a cycle."""
    copy = tmp_path / "app"
    shutil.copytree(ROOT / "app", copy, ignore=shutil.ignore_patterns("static", "__pycache__"))
    generation = copy / "services" / "generation.py"
    generation.write_text(generation.read_text() + "\nfrom app.services.turns import Turn  # noqa\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "app" or m.startswith("app.")]:
        monkeypatch.delitem(sys.modules, name)
    cycles = module_cycles("app")
    assert any({"app.services.generation", "app.services.turns"} <= set(c) for c in cycles), cycles


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_layers_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_import_up_a_layer_is_refused(tmp_path: Path) -> None:
    """A provider that imports a service (what providers/ollama.py once did) breaks the contract."""
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("static", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    ollama = tmp_path / "app" / "providers" / "ollama.py"
    ollama.write_text(ollama.read_text() + "\nfrom app.services.history import estimate_tokens  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "app.providers is not allowed to import app.services" in result.stdout, result.stdout[-3000:]
