"""The architecture, read from the code's own imports (tests/test_structure.py).

Every import statement of the four packages is parsed (at module level or inside a function: a
lazy import is still a dependency), relative imports resolved, and the module graph checked:

- no import circles;
- no private name (`_x`) imported from another module;
- the layers of ../shared/DESIGN.md: data_gen and kernels know no model and no sweep, minigpt knows
  no sweep; the running side of sweeps never imports the analysis except through the one report
  command (sweeps/report.py), and the analysis imports of the running side only its readers
  (sweeps.results, sweeps.validate);
- no module over about 400 lines (Triton kernel files, whose kernel bodies run long, get 500);
- no function or method over MAX_FUNCTION_LINES lines: one that long is doing several jobs.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("data_gen", "kernels", "minigpt", "sweeps")
MAX_LINES, MAX_KERNEL_LINES = 400, 500
MAX_FUNCTION_LINES = 70


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, str | None, int]]:
    """(target module, imported name or None, line) for every internal import in the file."""
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names
                    if a.name.split(".")[0] in PACKAGES]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:  # `from pkg import submodule`
                    out.append((sub, None, node.lineno))
                else:
                    out.append((target, alias.name, node.lineno))
    return out


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = _modules()
    known = set(modules)
    graph, private = {m: set() for m in modules}, []
    for name, path in modules.items():
        for target, imported, line in _imports(name, path, known):
            if target not in known:
                continue
            if target != name:
                graph[name].add(target)
            if imported and imported.startswith("_") and target != name:
                private.append(f"{path.relative_to(ROOT)}:{line} imports {imported} from {target}")
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert _cycles(_graph()[0]) == []


def test_no_private_name_is_imported_from_another_module():
    assert _graph()[1] == []


def _layer(module: str) -> str:
    if module.startswith("sweeps.analysis"):
        return "analysis"
    return module.split(".")[0]


# which layers a layer may import (itself always)
ALLOWED = {
    "data_gen": set(),
    "kernels": set(),
    "minigpt": {"data_gen", "kernels"},
    "sweeps": {"data_gen", "kernels", "minigpt"},
    "analysis": {"data_gen", "sweeps"},
}
READERS = {"sweeps.results", "sweeps.validate"}  # what the analysis may read of the running side


def test_layers_never_import_upward():
    graph = _graph()[0]
    wrong = []
    for module, targets in graph.items():
        layer = _layer(module)
        for target in targets:
            other = _layer(target)
            if other == layer:
                continue
            if other not in ALLOWED[layer]:
                wrong.append(f"{module} -> {target}")
            elif layer == "analysis" and other == "sweeps" and target not in READERS | {"sweeps"}:
                wrong.append(f"{module} -> {target} (the analysis reads only {sorted(READERS)})")
            elif layer == "sweeps" and other == "analysis" and module != "sweeps.report":
                wrong.append(f"{module} -> {target} (only sweeps.report reaches the analysis)")
    assert wrong == []


def test_the_report_command_is_the_only_way_into_the_analysis():
    graph = _graph()[0]
    into = sorted(m for m, targets in graph.items() if _layer(m) == "sweeps"
                  and any(_layer(t) == "analysis" for t in targets))
    assert into in ([], ["sweeps.report"])


@pytest.mark.parametrize("module", sorted(_modules()))
def test_modules_stay_short(module):
    path = _modules()[module]
    limit = MAX_KERNEL_LINES if module.startswith("kernels.") else MAX_LINES
    assert len(path.read_text().splitlines()) <= limit, f"{path.relative_to(ROOT)} is too long"


@pytest.mark.parametrize("module", sorted(_modules()))
def test_functions_stay_short(module):
    tree = ast.parse(_modules()[module].read_text())
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, from line {node.lineno})"
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], f"{module}: split by job: {', '.join(long)}"
