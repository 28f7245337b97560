"""How long the committed runs took: one table from the CSVs' ``wall_time_s``.

Each results CSV records its run's wall time (notebook start to CSV written) and device. The
table groups the runs by notebook; a run whose configuration another run already has (an
alias, :func:`scflow.repro.tables.wall_times`) copied that run's CSV and is not counted. The
budget study (notebook 09) chooses the grid's settings and ran apart from it, so its time is a
row of its own, outside the total.
"""

from __future__ import annotations

import pandas as pd

from scflow.repro.markdown_tables import span_minutes
from scflow.repro.tables import STUDY_NOTEBOOK, wall_times


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def timings_markdown(results: pd.DataFrame) -> str:
    """The timings table of ``results`` (module docstring), with the total and the span."""
    times = wall_times(results)
    times = times[~times.alias]
    if times.empty:
        return "(no run has been done yet)"
    devices = ", ".join(sorted({str(d) for d in results.device.dropna()})) or "-"
    lines = [f"Wall time of each run as its CSV records it (`wall_time_s`; device: {devices}); "
             "runs with an identical configuration ran once, and a run that found its student "
             "already trained in the cache (by an earlier run, or another with the same "
             "settings) records little more than its evaluation.", "",
             "| notebook | runs | minutes per run | minutes in all |", "|---|---|---|---|"]
    for notebook, grp in times.groupby("notebook", sort=True):
        lo, hi = grp.wall_time_s.min(), grp.wall_time_s.max()
        per_run = _minutes(lo) if len(grp) == 1 else f"{_minutes(lo)}-{_minutes(hi)}"
        study = " (the budget study, not in the total)" if notebook == STUDY_NOTEBOOK else ""
        lines.append(f"| `{notebook}`{study} | {len(grp)} | {per_run} | "
                     f"{_minutes(grp.wall_time_s.sum())} |")
    grid = times[times.notebook != STUDY_NOTEBOOK]
    in_grid = results[results.notebook != STUDY_NOTEBOOK]
    lines.append(f"| **total** (every run but the study) | {len(grid)} | | "
                 f"**{_minutes(grid.wall_time_s.sum())}** |")
    lines += ["", f"Wall-clock time during which at least one of those runs was running: "
                  f"{span_minutes(in_grid)} (runs overlap when the runner executes several at "
                  "once, `--jobs`; a pause of the runner is not counted). A run interrupted "
                  "and resumed records the time of its last part only."]
    return "\n".join(lines)
