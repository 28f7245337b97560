"""The package's layering: the math core never imports the reproduction machinery, and no two
modules of ``scflow`` import each other (not even inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scflow"
REPRO = "scflow.repro"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """``scflow/repro/run.py`` -> ``scflow.repro.run`` (a package's ``__init__`` -> the package)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def scflow_imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every ``scflow`` module ``path`` imports, at module level or inside a function.

    ``from scflow import adm`` names the module ``scflow.adm``; ``from scflow.x import name``
    the module ``scflow.x``; relative imports are resolved against ``path``'s package.
    """
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    modules = {module_name(p, root) for p in root.rglob("*.py")}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from package import module``: the module is what is imported
            found.update(f"{target}.{a.name}" for a in node.names
                         if f"{target}.{a.name}" in modules)
    return {m for m in found if m == root.name or m.startswith(root.name + ".")} - {own}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (packages' ``__init__`` edges dropped: importing
    ``scflow.x.y`` runs ``scflow.x`` first, which is not a dependency of the module's code)."""
    graph = {module_name(p, root): scflow_imports(p, root) for p in sorted(root.rglob("*.py"))}
    return {m: {d for d in deps if d in graph and not any(k.startswith(d + ".") for k in graph)}
            for m, deps in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_core_never_imports_repro():
    graph = import_graph()
    core = {m for m in graph if m != REPRO and not m.startswith(REPRO + ".")}
    assert len(core) > 20 and len(graph) - len(core) > 10  # the walk found both layers
    bad = {m: sorted(d for d in graph[m] if d == REPRO or d.startswith(REPRO + "."))
           for m in sorted(core)}
    assert not {m: d for m, d in bad.items() if d}, "core modules importing scflow.repro"


def test_no_import_cycles_in_scflow():
    graph = import_graph()
    assert "scflow.repro.experiment" in graph["scflow.repro.plan"]  # in-function imports are read
    assert cycles(graph) == []


def test_the_checks_catch_what_they_guard(tmp_path):
    """A planted cycle (one side inside a function) and a planted core -> repro import."""
    pkg = tmp_path / "scflow"
    (pkg / "repro").mkdir(parents=True)
    for f in ("__init__.py", "repro/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "repro" / "report.py").write_text("from scflow.repro.claims import CLAIMS\n")
    (pkg / "repro" / "claims.py").write_text("def f():\n    from scflow.repro import report\n")
    (pkg / "flow.py").write_text("from .repro import presets\nimport scflow.repro.report\n")
    graph = import_graph(pkg)
    assert cycles(graph) == [["scflow.repro.claims", "scflow.repro.report"]]
    assert graph["scflow.flow"] == {"scflow.repro.report"}  # presets does not exist: dropped
    assert scflow_imports(pkg / "flow.py", pkg) >= {"scflow.repro", "scflow.repro.report"}


LONG_BY_DESIGN = {
    # one table, read side by side: every parameter's declaration, then its value per preset
    "scflow/repro/presets.py",
}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.stem)
def test_modules_stay_short(path):
    """A module is read in one sitting: about 300 lines at most (a few over for imports)."""
    rel = path.relative_to(PACKAGE.parent).as_posix()
    n = len(path.read_text().splitlines())
    assert rel in LONG_BY_DESIGN or n <= 330, f"{rel} has {n} lines; split it by concept"
