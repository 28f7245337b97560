"""Find the numbered notebooks and read their ``parameters`` cell without running them.

The runner (:mod:`scflow.repro.run`) and the hygiene tests use these helpers to know, before any
compute, which names a notebook accepts and what its defaults are. The cell must hold only
``name = literal  # comment`` lines, so :func:`ast.literal_eval` reads it safely.
"""

from __future__ import annotations

import ast
import io
import os
import tokenize
from pathlib import Path
from typing import Any

import nbformat

from scflow.cache import REPO_ROOT

PARAMETERS_TAG = "parameters"


class NotebookError(ValueError):
    """A missing notebook or a malformed ``parameters`` cell."""


def notebooks_dir() -> Path:
    """``$SCFLOW_NOTEBOOKS`` if set, else ``<repo>/notebooks``."""
    return Path(os.environ.get("SCFLOW_NOTEBOOKS", REPO_ROOT / "notebooks"))


def notebook_path(name: str | Path, directory: Path | None = None) -> Path:
    """Path of a notebook given as a name (``01_latent_flow_matching``), file name or path."""
    directory = notebooks_dir() if directory is None else Path(directory)
    name = Path(name)
    candidates = [name, REPO_ROOT / name] if name.suffix == ".ipynb" else []
    candidates.append(directory / (name.name if name.suffix == ".ipynb" else name.name + ".ipynb"))
    for path in candidates:
        if path.is_file():
            return path.resolve()
    available = sorted(p.stem for p in directory.glob("*.ipynb"))
    raise NotebookError(f"notebook {str(name)!r} not found in {directory}; "
                        f"available: {', '.join(available) or '(none)'}")


def parameters_cell_index(nb: nbformat.NotebookNode, where: str = "notebook") -> int:
    """Index of the single cell tagged ``parameters`` (error if none or several)."""
    tagged = [i for i, cell in enumerate(nb.cells)
              if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise NotebookError(f"{where}: expected exactly one cell tagged {PARAMETERS_TAG!r}, "
                            f"found {len(tagged)}")
    return tagged[0]


def parse_parameters_source(source: str, where: str = "parameters cell") -> dict[str, Any]:
    """``{name: value}`` of a parameters cell; only ``name = literal`` statements are allowed."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise NotebookError(f"{where}: {err}") from err
    values: dict[str, Any] = {}
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):
            raise NotebookError(f"{where}, line {stmt.lineno}: only `name = literal` is allowed")
        name = stmt.targets[0].id
        try:
            value = ast.literal_eval(stmt.value)
        except ValueError as err:
            raise NotebookError(f"{where}, line {stmt.lineno}: {name} is not a literal") from err
        if name in values:
            raise NotebookError(f"{where}, line {stmt.lineno}: {name} assigned twice")
        values[name] = value
    return values


def parameters_cell(path: str | Path) -> dict[str, Any]:
    """Defaults declared in the notebook's ``parameters`` cell, in cell order."""
    nb = nbformat.read(Path(path), as_version=4)
    cell = nb.cells[parameters_cell_index(nb, str(path))]
    return parse_parameters_source(cell.source, f"{path} parameters cell")


def parameter_comments(path: str | Path) -> dict[str, str]:
    """``{name: comment}`` of the parameters cell (the ``# ...`` text after each literal)."""
    nb = nbformat.read(Path(path), as_version=4)
    source = nb.cells[parameters_cell_index(nb, str(path))].source
    comments: dict[str, str] = {}
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            head = lines[tok.start[0] - 1][: tok.start[1]]
            name = head.split("=", 1)[0].strip()
            if "=" in head and name.isidentifier():
                comments[name] = tok.string.lstrip("#").strip()
    return comments
