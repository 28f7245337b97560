"""The executed notebook kept beside its results: ``results/<preset>/notebooks/<run>.ipynb``.

The published copy is what a reader opens on the repository's web page (``notebooks/`` stays
stripped), so it says nothing about the machine that ran it and reads like a clean run:

- every absolute path of that machine (checkout, cache, results, runs, shipped artefacts,
  notebooks, the Python environment, the home folder) is written repository-relative, e.g.
  ``/home/me/scflow/results/mini/table4_cd.csv`` -> ``results/mini/table4_cd.csv``;
- consecutive stream outputs are joined and carriage returns applied, as a terminal shows them:
  a progress bar keeps its final state, one line, not every refresh;
- live widgets are dropped (their text form is the widget's first state, e.g. a bar at 0%);
- papermill's per-cell timings and execution counts, which change on every run, are removed
  so that regenerated copies are diffable.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scflow.cache import REPO_ROOT, artifacts_root, atomic_write_bytes, cache_root
from scflow.repro.notebooks import notebooks_dir
from scflow.repro.plan import runs_root
from scflow.repro.results import results_path, results_root

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TEXT_MIMES = ("text/plain", "text/markdown", "text/html", "text/latex")


def published_path(preset: str, run_name: str) -> Path:
    """``results/<preset>/notebooks/<run_name>.ipynb``: the executed notebook kept with the CSV."""
    return results_path(preset, run_name).parent / "notebooks" / f"{run_name}.ipynb"


def machine_roots() -> list[tuple[str, str]]:
    """(absolute folder, how the published copy writes it), most specific folder first.

    The folders are this process's: the runner publishes in the environment its kernels ran in,
    so a cache or results folder set by ``SCFLOW_CACHE`` / ``SCFLOW_RESULTS`` maps to ``cache``
    / ``results`` like the default ones inside the checkout.
    """
    named = [(results_root(), "results"), (cache_root(), "cache"), (runs_root(), "runs"),
             (artifacts_root(), "artifacts"), (notebooks_dir(), "notebooks"), (REPO_ROOT, ".")]
    named += [(Path(p), "<site-packages>") for p in
              {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}]
    named += [(Path(sys.prefix), "<python>"), (Path.home(), "~")]
    pairs: dict[str, str] = {}
    for path, rel in named:
        for form in (str(path), str(path.resolve())):
            if form not in pairs and len(Path(form).parts) > 1:  # never the bare root "/"
                pairs[form] = rel
    return sorted(pairs.items(), key=lambda kv: len(kv[0]), reverse=True)


def relative_paths(text: str, roots: Iterable[tuple[str, str]]) -> str:
    """``text`` with each root written as its label: ``<root>/x`` -> ``<label>/x`` (``x`` for
    the checkout), a bare ``<root>`` -> ``<label>``; a longer name that starts with a root
    (``/srv/repo2`` for ``/srv/repo``) is left alone."""
    for root, rel in roots:
        pattern = re.compile(re.escape(root) + r"(?:(/)(?=\S)|(?![\w.-]))")

        def repl(m: re.Match[str], rel: str = rel) -> str:
            if m.group(1):
                return "" if rel == "." else rel + "/"
            return rel

        text = pattern.sub(repl, text)
    return text


def terminal_text(text: str) -> str:
    """What a terminal shows for ``text``: on each line, the part after its last carriage
    return (a progress bar's final state)."""
    lines = []
    for line in text.split("\n"):
        frames = [f for f in line.split("\r") if f]
        lines.append(frames[-1] if frames else "")
    return "\n".join(lines)


def clean_outputs(outputs: list[Any], roots: list[tuple[str, str]]) -> list[Any]:
    """A code cell's outputs as published (module docstring), in order."""
    out: list[Any] = []
    for o in outputs:
        if o.get("output_type") == "stream":
            if out and out[-1].get("output_type") == "stream" and out[-1].name == o.name:
                out[-1].text += o.text
            else:
                out.append(o)
            continue
        data = o.get("data", {})
        if WIDGET_VIEW in data:
            continue
        if "execution_count" in o:
            o["execution_count"] = None
        for mime in TEXT_MIMES:
            if isinstance(data.get(mime), str):
                data[mime] = relative_paths(data[mime], roots)
        if o.get("output_type") == "error":
            o["traceback"] = [relative_paths(t, roots) for t in o.get("traceback", [])]
            o["evalue"] = relative_paths(o.get("evalue", ""), roots)
        out.append(o)
    for o in out:
        if o.get("output_type") == "stream":
            o.text = relative_paths(terminal_text(o.text), roots)
    # a lone newline (a bar's last one, flushed after the next print) would be an empty box
    return [o for o in out if o.get("output_type") != "stream" or o.text.strip()]


def publish_notebook(executed: Path, dest: Path) -> None:
    """Write the published copy of an executed notebook (module docstring) to ``dest``."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # live widget state: nothing to show in a static copy
    roots = machine_roots()
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell.source = relative_paths(cell.source, roots)  # e.g. injected parameters
        if cell.cell_type == "code":
            cell.execution_count = None
            cell.outputs = clean_outputs(cell.get("outputs", []), roots)
    atomic_write_bytes(dest, nbformat.writes(nb).encode())
