"""Results tables as Markdown: ours beside the paper's, per table (Tables 1-6), per method.

Cells read ``ours / paper``; ours is ``mean ± SE`` over the row's units (seeds and draws of the
evaluation bank), the standard error the claims use (over seeds where a row has two or more,
else over draws; a column says which), ``missing`` where its run has not been done and ``n/e``
where the run did not evaluate that NFE;
the paper's is as printed there, ``-`` where it reports nothing. The numbers come from
:mod:`scflow.repro.tables`; REPORT.md (:mod:`scflow.repro.report`) and the generated sections
of the README and docs (:mod:`scflow.repro.generated`) write them with these functions.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from scflow.repro.tables import MISSING, T2I_PAPER_COLUMNS, cell_stats, our_value, replica_map
from scflow.repro.units import UnitTable, cell_interval

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
    done, units, over = set(results.run), UnitTable(results), set()
    labels = {"fid": "FID", "precision": "precision", "recall": "recall",
              "sec_per_image": "s / image"}
    lines = [T2I_ROWS_NOTE, "",
             "| paper row | ours (miniature) | NFE | "
             + " | ".join(f"{labels[m]}: ours / paper" for m in T2I_PAPER_COLUMNS)
             + " | prompt accuracy (ours) | CLIP (paper) |",
             "|" + "---|" * (len(T2I_PAPER_COLUMNS) + 5)]
    for r in sub.itertuples():
        cells = [f"{_ours_cell(units, r, m, done, over)} / {paper_num(float(getattr(r, col)))}"
                 for m, col in T2I_PAPER_COLUMNS.items()]
        lines.append(f"| {r.row} | `{r.method}` | {r.nfe} | " + " | ".join(cells) + f" | "
                     f"{_ours_cell(units, r, 'prompt_accuracy', done, over)} | "
                     f"{paper_num(float(r.clip))} |")
    spread = sorted(w for w in over if w != "one value")
    if spread:
        lines += ["", f"Ours: mean ± SE over {', '.join(spread)}."]
    return "\n".join(lines)


def _ours_cell(units: UnitTable, row: Any, metric: str, done: set[str], over: set[str]) -> str:
    """Our number for a paper row (``mean ± SE`` where it has several units; what they are is
    added to ``over``), ``n/e`` if its run did not evaluate it, else ``missing``."""
    s = cell_stats(cell_interval(units.cell(row.run, row.method, int(row.nfe), metric)))
    if math.isnan(s["ours"]):
        return "n/e" if row.run in done else MISSING
    over.add(s["over"])
    return mean_pm(s["ours"], s["ours_se"])


def t2i_speed_line(results: pd.DataFrame) -> str:
    """The seconds-per-image ratio 2-RF NFE 25 / SCFlow NFE 1, ours beside the paper's."""
    slow = our_value(results, "t2i", "2-rf", 25, "sec_per_image")
    fast = our_value(results, "t2i", "scflow", 1, "sec_per_image")
    ours = f"{slow / fast:.1f}x ({num(slow)} s vs {num(fast)} s)" if slow and fast else MISSING
    return (f"Seconds per image, 2-RF at NFE 25 / SCFlow at NFE 1 (with the VAE decode, one "
            f"harness): ours {ours}; paper 0.88 s / 0.09 s = 9.8x (A100).")


def num(x: float | None, digits: int = 3) -> str:
    """Three significant digits (whole numbers from 1000); ``-`` if missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def mean_pm(mean: float | None, se: float) -> str:
    """``mean ± SE`` when there is a standard error (two or more units), else the number; an SE
    at rounding level (equal units) reads 0."""
    if math.isnan(se):
        return num(mean)
    return f"{num(mean)} ± {num(0.0 if se <= 1e-12 * abs(mean or 1.0) else se, 2)}"


def paper_num(x: float) -> str:
    """The paper's number as printed there (no rounding)."""
    return "-" if math.isnan(x) else f"{x:g}"


def _row_over(grp: pd.DataFrame) -> str:
    """What a row's ``±`` is over: ``SE over 3 seeds x 5 draws``, ``one value``, or ``-``."""
    words = [w for w in dict.fromkeys(grp.over) if w] if "over" in grp else []
    if not words:
        return "-"
    return "; ".join(w if w == "one value" else f"SE over {w}" for w in words)


def table_markdown(cmp: pd.DataFrame, extra: tuple[str, dict[str, str]] | None = None) -> str:
    """A compare table as Markdown: one line per row, cells ``ours / paper`` per NFE.

    ``ours`` is ``mean ± SE`` over the row's units where it has two or more (the column
    ``ours: ±`` says over what), else the number; it reads ``missing`` where the run has not
    been done and ``n/e`` where the run did not evaluate that NFE; ``paper`` reads ``-`` where
    the paper reports no number. ``extra``: (header, {row: cell}) adds a last column (e.g. the
    teacher's converged FID), ``-`` for rows without a cell.
    """
    nfes = list(dict.fromkeys(cmp.nfe))
    head = ("| row | run | ours: ± | " + " | ".join(f"NFE {n}: ours / paper" for n in nfes)
            + (f" | {extra[0]}" if extra else "") + " |")
    lines = [head, "|" + "---|" * (len(nfes) + 3 + bool(extra))]
    for (row, run), grp in cmp.groupby(["row", "run"], sort=False):
        cells = []
        for n in nfes:
            r = grp[grp.nfe == n].iloc[0]
            ours = (mean_pm(r.ours, r.ours_se) if not math.isnan(r.ours)
                    else "n/e" if r.run_done else MISSING)
            cells.append(f"{ours} / {paper_num(r.paper)}")
        if extra:
            cells.append(extra[1].get(row, "-"))
        lines.append(f"| {row} | `{run}` | {_row_over(grp)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def frame_markdown(df: pd.DataFrame, se: pd.DataFrame | None = None,
                   over: pd.DataFrame | None = None) -> str:
    """Labels x NFE as Markdown; cells ``mean ± SE`` where ``se`` has a number; ``over`` (the
    units in words, :func:`scflow.repro.tables.metric_by_method`'s ``stat="over"``) adds a
    column saying what the SE is over."""
    if df.empty:
        return f"({MISSING}: no run has these numbers yet)"
    cols = list(df.columns)
    lines = ["| method | " + ("ours: ± | " if over is not None else "")
             + " | ".join(f"NFE {c}" for c in cols) + " |",
             "|" + "---|" * (len(cols) + 1 + (over is not None))]
    for label, row in df.iterrows():
        sd = [se.at[label, c] if se is not None and c in se.columns else math.nan
              for c in cols]
        first = ""
        if over is not None:
            words = over.loc[label].dropna() if label in over.index else pd.Series(dtype=str)
            first = _row_over(pd.DataFrame({"over": list(words)})) + " | "
        lines.append(f"| {label} | {first}" + " | ".join(mean_pm(row[c], s)
                                                        for c, s in zip(cols, sd, strict=True))
                     + " |")
    return "\n".join(lines)


def seeds_cell(results: pd.DataFrame, preset_seed: int) -> str:
    """``one (<seed>)``, or which runs have which seeds where replicas exist."""
    multi = {run: seeds for run, seeds in replica_map(results).items() if len(seeds) > 1}
    if not multi:
        return f"one ({preset_seed})"
    groups: dict[tuple[int, ...], list[str]] = {}
    for run, seeds in multi.items():
        groups.setdefault(tuple(seeds), []).append(f"`{run}`")
    parts = [f"{', '.join(map(str, s))} for {', '.join(runs)}" for s, runs in groups.items()]
    return "; ".join(parts) + f" (tables: mean ± SE); one ({preset_seed}) for the other runs"


def span_minutes(results: pd.DataFrame) -> str:
    """Minutes during which at least one run was running: the union of every run's interval
    (its CSV's timestamp minus ``wall_time_s``, to the timestamp), so a pause between two
    invocations of the runner is not counted."""
    try:
        ts = pd.to_datetime(results.timestamp, utc=True)
        frame = pd.DataFrame({"run": results.run, "end": ts,
                              "start": ts - pd.to_timedelta(pd.to_numeric(results.wall_time_s),
                                                            unit="s")})
        spans = frame.groupby("run").agg(start=("start", "min"), end=("end", "max"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return "-"
    busy, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(zip(spans.start, spans.end, strict=True)):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                busy += (cur_end - cur_start).total_seconds()
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        busy += (cur_end - cur_start).total_seconds()
    return f"{busy / 60:.1f} min"
