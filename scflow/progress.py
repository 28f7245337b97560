"""Progress bars: live in interactive Jupyter or a terminal, sparse in headless runs.

A headless run (``python -m scflow.repro.run``, plain papermill, a log file) has nobody watching the
bar, but every refresh becomes output: at tqdm's default 10 refreshes a second a notebook's
output and its log grow by thousands of lines per run. Headless bars therefore refresh at most
every :data:`HEADLESS_MININTERVAL` seconds (plus the first and the last state).

Headless is decided, first match wins, by
1. ``SCFLOW_HEADLESS`` (:data:`HEADLESS_ENV`): the runner sets it to 1; ``0`` forces live bars;
2. inside a Jupyter kernel: the current cell was sent without stdin (papermill / nbclient /
   nbconvert send ``allow_stdin=False``; JupyterLab, Notebook and VS Code allow it);
3. otherwise: stderr is not a terminal (pipes, log files, pytest).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

HEADLESS_ENV = "SCFLOW_HEADLESS"
HEADLESS_MININTERVAL = 10.0  # seconds between two refreshes of a headless bar

__all__ = ["HEADLESS_ENV", "HEADLESS_MININTERVAL", "is_headless", "progress"]


def _ipykernel() -> Any | None:
    """The running ipykernel (None outside a Jupyter kernel)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    return getattr(shell, "kernel", None)


def is_headless() -> bool:
    """True when no one watches the bars live (see the module docstring for the rules)."""
    flag = os.environ.get(HEADLESS_ENV, "").strip().lower()
    if flag:
        return flag not in ("0", "false", "no")
    kernel = _ipykernel()
    if kernel is not None:
        return not getattr(kernel, "_allow_stdin", True)
    try:
        return not sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return True


def progress(iterable_or_total: Iterable[Any] | int, desc: str = "", disable: bool = False,
             initial: int = 0, total: int | None = None) -> Any:
    """A tqdm bar over an iterable, or over ``range(total)`` when given an int.

    Live (``tqdm.auto``: a widget in Jupyter when ipywidgets is installed) when someone
    watches, else a plain text bar refreshed at most every ``HEADLESS_MININTERVAL`` s.
    ``disable`` hides it (e.g. on the non-main processes of a multi-GPU run). ``initial`` and
    ``total`` make it count a part of a longer job (a resumed training: "k / N").
    """
    it = range(iterable_or_total) if isinstance(iterable_or_total, int) else iterable_or_total
    span = {"initial": initial, "total": total} if total is not None else {}
    if is_headless():
        from tqdm.std import tqdm

        # the explicit disable= also overrides TQDM_DISABLE, which the runner sets to keep
        # third-party bars (diffusers, accelerate) out of the logs
        return tqdm(it, desc=desc, disable=disable, mininterval=HEADLESS_MININTERVAL,
                    maxinterval=HEADLESS_MININTERVAL, ascii=True, ncols=100, **span)
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, disable=disable, **span)
