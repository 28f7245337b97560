"""Results CSVs and the paper's numbers as comparable tables (no text, no figures).

The paper's numbers are data: ``scflow/repro/data/paper_numbers.csv`` (Tables 3-6: table, row,
the run and method reproducing it, the paper's FID per NFE) and ``paper_numbers_t2i.csv``
(Tables 1-2). :mod:`scflow.repro.report` writes them as Markdown, :mod:`scflow.repro.claims`
judges the paper's claims on them, :mod:`scflow.repro.report_figures` draws them.

**Seeds and draws.** A row's run may have seed replicas (``<run>_s<k>``) and every sample
metric a row per draw of the evaluation bank (:mod:`scflow.repro.units`). Our number for a
(table, row) is the mean over its units and the tables read ``mean ± SE``, the standard error
the claims use: over seeds where a row has two or more, else over draws (a row with one value
is shown as it is); the FID-vs-NFE figures draw the SE as error bars. Claims are judged on
paired differences (:mod:`scflow.repro.claims`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scflow.repro.csvfile import CsvFileError, ModifiedCsvError
from scflow.repro.paired import Interval
from scflow.repro.results import COLUMNS
from scflow.repro.results_read import modified_allowed, read_results
from scflow.repro.units import (  # noqa: F401 - REPLICA, seed_replicas: importable from here too
    REPLICA,
    UnitTable,
    cell_interval,
    replica_map,
    seed_replicas,
    units_words,
)

PAPER_NUMBERS = Path(__file__).with_name("data") / "paper_numbers.csv"
PAPER_NUMBERS_T2I = Path(__file__).with_name("data") / "paper_numbers_t2i.csv"
T2I_PAPER_COLUMNS = {"fid": "fid", "precision": "precision", "recall": "recall",
                     "sec_per_image": "time_s"}
"""Our metric -> the column of ``paper_numbers_t2i.csv`` holding the paper's number for it."""
NFES = (1, 2, 4, 8, 16, 25)
TABLE_NFES: dict[str, tuple[int, ...]] = {
    "3": (1, 2, 25), "4": (1, 2, 4, 8, 16), "5": (1, 2, 4, 8, 16), "6": (1, 2, 4, 8, 16),
    "F": (1, 2, 4, 8, 16),
}
"""NFE columns shown per table: the paper's (Table 3: NFE 1, 2; the teacher also at 25)."""
TABLE_TITLES = {
    "3": "Table 3: one- and two-step baselines", "4": "Table 4: ablation of the loss terms",
    "5": "Table 5: loss weights (lambda_GAN, lambda_RF, lambda_BI)",
    "6": "Table 6: t_trunc, target EMA mu, t_skip",
    "F": "Fidelity: the paper's switches vs the authors' code's (no paper numbers)",
}
MISSING = "missing"


def load_paper_numbers(path: str | Path = PAPER_NUMBERS) -> pd.DataFrame:
    """The paper's Tables 3-6 in long form: table, row, run, method, nfe, paper (FID or NaN).

    Row order is the file's (= the paper's); ``table`` is a string ("3" ... "6", "F").
    """
    wide = pd.read_csv(path, comment="#", dtype={"table": str})
    wide["order"] = range(len(wide))
    long = wide.melt(id_vars=["table", "row", "run", "method", "order"],
                     value_vars=[f"fid_nfe{n}" for n in NFES], var_name="nfe", value_name="paper")
    long["nfe"] = long["nfe"].str.removeprefix("fid_nfe").astype(int)
    return long.sort_values(["order", "nfe"]).reset_index(drop=True)


def load_results(folder: str | Path, allow_modified: bool | None = None) -> pd.DataFrame:
    """Every results CSV of a folder, verified, concatenated (``run`` = file stem); empty frame
    if none.

    Older files without the later columns (:data:`scflow.repro.results.LATER_COLUMNS`) are
    read with those columns empty.
    A CSV that cannot be trusted (modified after its run, not a results CSV, unreadable) stops
    the load with one :class:`~scflow.repro.csvfile.CsvFileError` naming every such file. With
    ``allow_modified`` (default: inside :func:`~scflow.repro.results_read.allowing_modified`)
    modified files are read as they are and the others skipped, each with a warning; the
    frame's ``attrs["modified"]`` lists the modified files' names; ``attrs["folder"]`` is
    ``folder`` (for the files kept beside the CSVs).
    """
    allow = modified_allowed() if allow_modified is None else allow_modified
    frames, problems, modified = [], [], []
    for path in sorted(Path(folder).glob("*.csv")):
        try:
            df = read_results(path)
        except ModifiedCsvError as err:
            if not allow:
                problems.append(str(err))
                continue
            try:
                df = read_results(path, allow_modified=True)
            except CsvFileError as err2:
                print(f"warning: {err2}; skipped", file=sys.stderr)
                continue
            print(f"warning: {err}; used as it is (allow_modified)", file=sys.stderr)
            modified.append(path.name)
        except CsvFileError as err:
            if not allow:
                problems.append(str(err))
            else:
                print(f"warning: {err}; skipped", file=sys.stderr)
            continue
        frames.append(df.assign(run=path.stem))
    if problems:
        raise CsvFileError("\n".join(problems))
    out = (pd.concat(frames, ignore_index=True) if frames
           else pd.DataFrame(columns=list(COLUMNS)))
    out.attrs["modified"] = modified
    out.attrs["folder"] = str(folder)
    return out


def our_values(results: pd.DataFrame, run: str, method: str, nfe: int,
               metric: str = "fid") -> dict[int, float]:
    """``{seed: value}`` of (run, method, nfe, metric) over ``run``'s seed replicas, each
    seed's value the mean over its draws."""
    return UnitTable(results).seed_means(run, method, nfe, metric)


def our_value(results: pd.DataFrame, run: str, method: str, nfe: int,
              metric: str = "fid") -> float | None:
    """Our number for (run, method, nfe, metric): the mean over its units (seeds, draws), or
    ``None`` if that run or row is missing."""
    iv = cell_interval(UnitTable(results).cell(run, method, nfe, metric))
    return None if iv is None else iv.mean


def cell_stats(iv: Interval | None) -> dict[str, Any]:
    """A cell's columns of :func:`compare_table` from its :func:`scflow.repro.units.cell_interval`."""
    if iv is None:
        return {"ours": math.nan, "ours_se": math.nan, "n_seeds": 0, "n_draws": 0, "over": ""}
    return {"ours": iv.mean, "ours_se": iv.se, "n_seeds": iv.n_seeds, "n_draws": iv.n_draws,
            "over": units_words(iv.n_seeds, iv.n_draws)}


def compare_table(results: pd.DataFrame, paper: pd.DataFrame, table: str,
                  metric: str = "fid") -> pd.DataFrame:
    """One paper table in long form: row, run, method, nfe, ours (mean over the units; NaN if
    missing), ours_se (its standard error, NaN for one unit), n_seeds, n_draws, over (the units
    in words), paper, run_done.

    Only the NFE columns of :data:`TABLE_NFES` are kept.
    """
    sub = paper[(paper.table == table) & paper.nfe.isin(TABLE_NFES[table])].copy()
    units = UnitTable(results)
    stats = pd.DataFrame([cell_stats(cell_interval(units.cell(r.run, r.method, r.nfe, metric)))
                          for r in sub.itertuples()],
                         columns=["ours", "ours_se", "n_seeds", "n_draws", "over"],
                         index=sub.index)
    sub = pd.concat([sub, stats], axis=1)
    sub["ours"] = sub["ours"].astype(float)
    sub["run_done"] = [units.has_run(run) for run in sub.run]
    return sub[["row", "run", "method", "nfe", "ours", "ours_se", "n_seeds", "n_draws", "over",
                "paper", "run_done"]].reset_index(drop=True)


def load_paper_t2i(path: str | Path = PAPER_NUMBERS_T2I) -> pd.DataFrame:
    """The paper's Tables 1-2 (text-to-image): table, row, run, method, nfe, fid, clip,
    precision, recall, time_s (NaN where the paper reports nothing); file order."""
    return pd.read_csv(path, comment="#", dtype={"table": str})


def missing_runs(results: pd.DataFrame, paper: pd.DataFrame) -> list[str]:
    """Runs named by the paper tables that have no results CSV (in table order)."""
    have = set(results.run)
    return list(dict.fromkeys(r for r in paper.run if r not in have))


def metric_by_method(results: pd.DataFrame, metric: str,
                     runs: Sequence[tuple[str, str, str]], stat: str = "mean") -> pd.DataFrame:
    """``metric`` per NFE for (label, run, method) triples: labels as rows, NFEs as columns.

    ``stat``: ``"mean"`` over the units (seeds, draws), their standard error ``"se"`` (over
    seeds where there are two or more, else over draws; NaN for one unit), or ``"over"`` (what
    the SE is over, in words).
    """
    if stat not in ("mean", "se", "over"):
        raise ValueError(f"stat must be 'mean', 'se' or 'over' (got {stat!r})")
    units = UnitTable(results)
    nfes = sorted({n for (_, _, k, n) in units.index if k == metric and n is not None})
    out = {}
    for label, run, method in runs:
        row = {}
        for n in nfes:
            s = cell_stats(cell_interval(units.cell(run, method, n, metric)))
            if not math.isnan(s["ours"]):
                row[n] = {"mean": s["ours"], "se": s["ours_se"], "over": s["over"]}[stat]
        out[label] = row
    df = pd.DataFrame.from_dict(out, orient="index")
    return df.reindex(sorted(df.columns), axis=1) if len(df.columns) else df


STUDY_NOTEBOOK = "09_training_budget"


def wall_times(results: pd.DataFrame) -> pd.DataFrame:
    """Per run: notebook, config hash, wall time (s; the last row's ``wall_time_s``), alias flag.

    A run whose config hash an earlier run (by name) already has is an alias: its CSV is a copy
    and its time is not counted again.
    """
    rows, seen = [], set()
    for run, grp in results.groupby("run", sort=True):
        h = str(grp.config_hash.iloc[0])
        rows.append({"run": run, "notebook": grp.notebook.iloc[0], "config_hash": h,
                     "wall_time_s": float(pd.to_numeric(grp.wall_time_s).max()),
                     "alias": h in seen, "git_sha": grp.git_sha.iloc[0]})
        seen.add(h)
    return pd.DataFrame(rows, columns=["run", "notebook", "config_hash", "wall_time_s", "alias",
                                       "git_sha"])


METHOD_RUNS: tuple[tuple[str, str, str], ...] = (
    ("teacher", "01_teacher", "teacher"), ("rectified", "table3_rectified", "rectified"),
    ("rectified+distill", "table3_rectified", "rectified+distill"), ("CD", "table4_cd", "cd"),
    ("+GAN", "table4_gan", "cd+trunc+gan"), ("+RF", "table4_rf", "cd+trunc+gan+rf"),
    ("+BI (SCFlow)", "table4_bi", "scflow"),
    ("SCFlow, code switches", "table4_bi_fidelity_code", "scflow"),
)
"""(label, run, method) of every method shown in the consistency / saturation section."""
