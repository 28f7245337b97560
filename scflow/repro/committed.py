"""A run's committed numbers beside the paper's, for a notebook's "What to see" cell.

The notebooks' prose says in words what to look for; the numbers come from here, read from
``results/<preset>/<run>.csv`` by the project's results reader (:func:`scflow.repro.tables.
load_results`) and from the paper's numbers (:func:`scflow.repro.tables.load_paper_numbers`),
so they are always the ones the committed run computed.
"""

from __future__ import annotations

import pandas as pd

from scflow.repro.results import results_dir
from scflow.repro.tables import load_paper_numbers, load_results

METRICS = ("fid", "std_ratio", "consistency_rmse")
"""Shown per NFE: FID, contrast (1 = data-like) and the distance to the one-step sample."""


def committed_table(run_name: str, preset: str,
                    metrics: tuple[str, ...] = METRICS) -> pd.DataFrame | None:
    """``run_name``'s committed values per (method, NFE), with the paper's FID of every paper row
    the run reproduces as further columns; ``None`` if ``results/<preset>/<run_name>.csv`` is
    missing."""
    folder = results_dir(preset)
    if not (folder / f"{run_name}.csv").is_file():
        return None
    results = load_results(folder)
    ours = results[(results.run == run_name) & results.metric.isin(metrics)]
    table = ours.pivot_table(index=["method", "nfe"], columns="metric", values="value")
    table = table[[m for m in metrics if m in table.columns]]
    table.columns = [f"{m} (ours)" for m in table.columns]
    table.index = table.index.set_levels(table.index.levels[1].astype(int), level="nfe")
    paper = load_paper_numbers()
    for (number, row), part in paper[paper.run == run_name].groupby(["table", "row"], sort=False):
        fid = part.dropna(subset=["paper"]).set_index(["method", "nfe"])["paper"]
        table[f"fid (paper, Table {number} {row!r})"] = fid.reindex(table.index)
    return table


def show_committed(run_name: str, preset: str, fallback: str | None = None) -> pd.DataFrame | None:
    """Print where ``run_name``'s committed numbers come from and how long the run took, and
    return them beside the paper's (:func:`committed_table`) for the notebook to display.

    A run without a committed CSV (a notebook run under its own name) shows ``fallback``'s, the
    notebook's own paper row; with neither, says so and returns ``None``.
    """
    folder = results_dir(preset)
    if fallback is not None and not (folder / f"{run_name}.csv").is_file():
        run_name = fallback
    table = committed_table(run_name, preset)
    if table is None:
        print(f"no committed {folder.name}/{run_name}.csv under results/: run "
              f"`python -m scflow.repro.run papermill_runs/{run_name}.yaml --preset {preset}`")
        return None
    rows = load_results(folder).query("run == @run_name")
    minutes = rows.wall_time_s.max() / 60
    print(f"results/{preset}/{run_name}.csv: seed {rows.seed.iloc[0]}, "
          f"{int(rows.n_samples.max())} samples per NFE, on {rows.device.iloc[0]}, "
          f"configuration {rows.config_hash.iloc[0]}; the run took {minutes:.1f} min (the "
          f"wall_time_s of its last row; less where its student came from the cache)")
    return table
