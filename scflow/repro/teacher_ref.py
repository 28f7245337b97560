"""The teacher's converged reference beside its Euler rows, and one-step SCFlow against it.

Euler at the paper's NFE (Table 3's teacher row: NFE 1 and 25) is limited by its step size, so
the teacher's best sample is its converged one: notebook 01's method ``teacher_heun`` (Heun,
second order, :func:`scflow.samplers.heun_sample`), of which the largest NFE is the reference.
The paper's counterpart is LFM's adaptive dopri5 FID of its CelebA-HQ 256 teacher,
:data:`PAPER_CONVERGED`; the paper's one-step SCFlow (Table 3, 8.06) is about 1.42 times it.
Every "against the teacher's best" comparison of the report uses this converged number.
"""

from __future__ import annotations

import math

import pandas as pd

from scflow.repro.claim_rules import common_units
from scflow.repro.markdown_tables import mean_pm, num
from scflow.repro.paired import Interval, paired_interval
from scflow.repro.tables import MISSING, cell_stats
from scflow.repro.units import Unit, UnitTable, cell_interval, unit_value, units_words

TEACHER_RUN = "01_teacher"
CONVERGED_METHOD = "teacher_heun"
PAPER_CONVERGED = 5.67
"""LFM's FID of its CelebA-HQ 256 teacher with the adaptive dopri5 solver (LFM's own report)."""
TEACHER_ROW = "LFM (teacher)"
SCFLOW_ROW = ("3", "Ours")
"""The paper's one-step SCFlow: Table 3's row "Ours" at NFE 1."""


def converged_nfe(units: UnitTable) -> int | None:
    """The largest NFE at which the converged reference was scored (None if it was not)."""
    nfes = [n for (r, m, k, n) in units.index
            if r == TEACHER_RUN and m == CONVERGED_METHOD and k == "fid" and n is not None]
    return max(nfes) if nfes else None


def converged_cell(results: pd.DataFrame) -> str:
    """Table 3's teacher cell for the converged FID: ``ours (Heun, NFE n; ± over) / paper``."""
    units = UnitTable(results)
    nfe = converged_nfe(units)
    paper = f"{PAPER_CONVERGED:g} (dopri5)"
    if nfe is None:
        return f"{MISSING} / {paper}"
    s = cell_stats(cell_interval(units.cell(TEACHER_RUN, CONVERGED_METHOD, nfe)))
    over = "" if s["over"] == "one value" else f"; SE over {s['over']}"
    return f"{mean_pm(s['ours'], s['ours_se'])} (Heun, NFE {nfe}{over}) / {paper}"


def _ratios(a: dict[Unit, float], b: dict[Unit, float]) -> dict[Unit, float]:
    """``a / b`` per unit on their common units (:func:`scflow.repro.claim_rules.common_units`:
    a shared run's draws pair with every seed's)."""
    out = {}
    for u in common_units([frozenset(a), frozenset(b)]):
        x, y = unit_value(a, u), unit_value(b, u)
        if x is not None and y:
            out[u] = x / y
    return out


def scflow_vs_converged(results: pd.DataFrame, paper: pd.DataFrame) -> Interval | None:
    """One-step SCFlow's FID / the teacher's converged FID, paired per unit (seed, draw): the
    interval of the mean ratio (:func:`scflow.repro.paired.paired_interval`); None if missing."""
    units = UnitTable(results)
    nfe = converged_nfe(units)
    row = paper[(paper.table == SCFLOW_ROW[0]) & (paper.row == SCFLOW_ROW[1])]
    if nfe is None or row.empty:
        return None
    ours = units.cell(str(row.run.iloc[0]), str(row.method.iloc[0]), 1)
    teacher = units.cell(TEACHER_RUN, CONVERGED_METHOD, nfe)
    ratios = _ratios(ours, teacher)
    return paired_interval(ratios) if ratios else None


def _paper_one_step(paper: pd.DataFrame) -> float:
    sel = paper[(paper.table == SCFLOW_ROW[0]) & (paper.row == SCFLOW_ROW[1]) & (paper.nfe == 1)]
    return float(sel.paper.iloc[0]) if len(sel) else math.nan


def teacher_line(results: pd.DataFrame, paper: pd.DataFrame) -> str:
    """One-step SCFlow against the teacher's converged FID, ours (a paired ratio with its 95%
    interval) beside the paper's."""
    nfe = converged_nfe(UnitTable(results))
    iv = scflow_vs_converged(results, paper)
    p1 = _paper_one_step(paper)
    theirs = f"paper {p1:g} / {PAPER_CONVERGED:g} = {p1 / PAPER_CONVERGED:.2f} (LFM's dopri5)"
    if iv is None:
        ours = f"ours {MISSING} (no converged reference of the teacher in the CSVs)"
    elif iv.over == "none":
        ours = f"ours {num(iv.mean)} (one value)"
    else:
        ours = (f"ours {iv.mean:.2f} [{iv.lo:.2f}, {iv.hi:.2f}] (mean of the paired ratios and "
                f"its 95% interval, {units_words(iv.n_seeds, iv.n_draws, True)})")
    where = f"Heun at NFE {nfe}" if nfe else "Heun"
    return (f"One-step SCFlow (Table 3 \"Ours\", NFE 1) against the teacher's converged FID "
            f"({where}), as a ratio: {ours}; {theirs}. Above 1: the one-step student is worse "
            f"than the teacher's best sample.")
