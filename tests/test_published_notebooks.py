"""The executed notebooks kept under results/<preset>/notebooks/ are clean copies of the current
code's runs: every ``scflow`` name they import exists, no absolute path of the machine that ran
them, no warning box (stderr holds progress bars only) and one progress line per training.
"""

from __future__ import annotations

import ast
import importlib
import re

import nbformat
import pytest

from scflow.cache import REPO_ROOT
from scflow.repro.publish import terminal_text

KEPT = sorted(p for p in REPO_ROOT.glob("results/*/notebooks/*.ipynb")
              if p.parts[-3] not in ("smoke", "interactive"))
IDS = [f"{p.parts[-3]}/{p.stem}" for p in KEPT]
pytestmark = pytest.mark.skipif(not KEPT, reason="no executed notebooks are kept")

MACHINE_PATH = re.compile(r"(?<![\w.~<>-])/(?:home|work|tmp|Users|root|mnt|srv|scratch|var|opt)/")
BAR_LINE = re.compile(r"^(?P<desc>[^:|]*?)(?P<part>\s*\([^)]*\))?:?\s*\d+%\|[^|]*\|\s*"
                      r"(?P<n>\d+)/(?P<total>\d+)")
"""A progress bar's line: ``<desc>: 100%|####| n/n [...]`` (its final state once published);
``part`` is a parenthesis after the description, e.g. a chunk's ``(updates 1001-1100)``."""


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def scflow_imports(source: str) -> list[tuple[str, str | None]]:
    """(module, name or None) of every ``import scflow...`` / ``from scflow... import name``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics: check the lines that are Python
        tree = ast.parse("\n".join(ln for ln in source.splitlines()
                                   if not ln.lstrip().startswith(("%", "!"))))
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.split(".")[0] == "scflow"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "scflow":
            out += [(node.module, a.name) for a in node.names]
    return out


@pytest.fixture(params=KEPT, ids=IDS)
def published(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_every_scflow_name_it_imports_exists(published):
    path, nb = published
    missing = []
    for module, name in (i for src in _code(nb) for i in scflow_imports(src)):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            missing.append(module)
            continue
        if name is not None and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert not missing, (f"{path.name} was executed by code that no longer exists ({missing}): "
                         "regenerate it with python -m scflow.repro.run --force")


def test_no_machine_path(published):
    path, _ = published
    hits = sorted(set(MACHINE_PATH.findall(path.read_text())))
    assert not hits, f"{path.name} names folders of the machine that ran it: {hits}"


def _stderr(nb) -> list[str]:
    """Each code cell's stderr as a terminal shows it (a bar's refreshes: its final state)."""
    return [terminal_text("".join(o.text for o in c.outputs
                                  if o.output_type == "stream" and o.name == "stderr"))
            for c in nb.cells if c.cell_type == "code"]


def test_no_warning_box_and_one_line_per_training(published):
    path, nb = published
    for text in _stderr(nb):
        lines = [ln for ln in text.splitlines() if ln.strip()]
        other = [ln for ln in lines if not BAR_LINE.match(ln)]
        assert not other, f"{path.name}: stderr that is not a progress bar: {other[:3]}"
        # One line per training: a training run in chunks shows one bar per chunk, each
        # named by its part ("updates 1001-1100"); a cell may train several students, each
        # with its own bar, and every bar ends complete
        bars = [BAR_LINE.match(ln) for ln in lines]
        chunks = [b[0] for b in bars if b["part"] and "updates" in b["part"]]
        assert not chunks, f"{path.name}: a training shown in chunks: {chunks[:2]}"
        unfinished = [b[0] for b in bars if b["n"] != b["total"]]
        assert not unfinished, f"{path.name}: a progress line left unfinished: {unfinished[:2]}"


def test_the_checks_catch_old_code_paths_warnings_and_chunked_bars():
    assert scflow_imports("import scflow.budget\nfrom scflow.params import notebook_params\n"
                          "from scflow.repro import tables\nimport numpy") == [
        ("scflow.budget", None), ("scflow.params", "notebook_params"),
        ("scflow.repro", "tables")]
    assert MACHINE_PATH.search("wrote /home/u/scflow/results/mini/a.csv")
    assert not MACHINE_PATH.search("wrote results/mini/a.csv and <python>/lib/x.py")
    chunk = BAR_LINE.match("distill (updates 1001-1100): 100%|####| 100/100 [00:37<00:00]")
    assert chunk["desc"].strip() == "distill" and "updates" in chunk["part"]
    whole = BAR_LINE.match("teacher: 100%|####| 5/5 [00:09<00:00,  1.90s/it]")
    assert whole["part"] is None and whole["n"] == whole["total"] == "5"
    assert BAR_LINE.match("distill:  40%|##  | 400/1000 [01:09<01:43]")["n"] == "400"
    assert not BAR_LINE.match("x.py:46: LinAlgWarning: Matrix is singular.")
