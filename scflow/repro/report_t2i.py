"""Tables 1-2 (text-to-image) of REPORT.md: our miniature's numbers beside the paper's.

Part of :mod:`scflow.repro.report`, which re-exports these names.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from scflow.repro.tables import MISSING, T2I_PAPER_COLUMNS, our_value

T2I_TITLES = {
    "1": "Table 1 (text-to-image; paper: COCO 2014, FID-30k)",
    "2": "Table 2 (text-to-image; paper: COCO 2017, FID-5k, seconds per image)",
}


T2I_ROWS_NOTE = (
    "Rows keep the paper's names for the paper's models (SD 1.5-sized: InstaFlow-0.9B and "
    "Ours-0.9B are 0.9B-parameter UNets). Our numbers beside them are the miniature's: the "
    "text-to-image net of the Scale table trained on digit captions (run `t2i`), the method "
    "named in the \"ours (miniature)\" column; only the trends compare.")
"""What our side of Tables 1-2 is: never the paper's 0.9B-parameter model."""


def t2i_markdown(results: pd.DataFrame, paper_t2i: pd.DataFrame, table: str) -> str:
    """One text-to-image table: per (row, NFE), ours / paper for FID, precision, recall and
    seconds per image; our prompt accuracy beside the paper's CLIP score (not the same metric:
    see ``scflow.metrics.METRIC_DOCS``)."""
    sub = paper_t2i[paper_t2i.table == table]
    done = set(results.run)
    labels = {"fid": "FID", "precision": "precision", "recall": "recall",
              "sec_per_image": "s / image"}
    lines = [T2I_ROWS_NOTE, "",
             "| paper row | ours (miniature) | NFE | "
             + " | ".join(f"{labels[m]}: ours / paper" for m in T2I_PAPER_COLUMNS)
             + " | prompt accuracy (ours) | CLIP (paper) |",
             "|" + "---|" * (len(T2I_PAPER_COLUMNS) + 5)]
    for r in sub.itertuples():
        cells = [f"{_ours_cell(results, r, m, done)} / {_paper_num(float(getattr(r, col)))}"
                 for m, col in T2I_PAPER_COLUMNS.items()]
        lines.append(f"| {r.row} | `{r.method}` | {r.nfe} | " + " | ".join(cells) + f" | "
                     f"{_ours_cell(results, r, 'prompt_accuracy', done)} | "
                     f"{_paper_num(float(r.clip))} |")
    return "\n".join(lines)


def _ours_cell(results: pd.DataFrame, row: Any, metric: str, done: set[str]) -> str:
    """Our number for a paper row, ``n/e`` if its run did not evaluate it, else ``missing``."""
    v = our_value(results, row.run, row.method, int(row.nfe), metric)
    return _num(v) if v is not None else "n/e" if row.run in done else MISSING


def t2i_speed_line(results: pd.DataFrame) -> str:
    """The seconds-per-image ratio 2-RF NFE 25 / SCFlow NFE 1, ours beside the paper's."""
    slow = our_value(results, "t2i", "2-rf", 25, "sec_per_image")
    fast = our_value(results, "t2i", "scflow", 1, "sec_per_image")
    ours = f"{slow / fast:.1f}x ({_num(slow)} s vs {_num(fast)} s)" if slow and fast else MISSING
    return (f"Seconds per image, 2-RF at NFE 25 / SCFlow at NFE 1 (with the VAE decode, one "
            f"harness): ours {ours}; paper 0.88 s / 0.09 s = 9.8x (A100).")


def _num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def _paper_num(x: float) -> str:
    """The paper's number as printed there (no rounding)."""
    return "-" if math.isnan(x) else f"{x:g}"
