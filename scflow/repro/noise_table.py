"""How noisy the miniature's numbers are: REPORT.md's noise table.

- the **FID floors** of real images (notebook 01, :mod:`scflow.metrics.floors`): ``n_eval``
  training images scored like a sample (``memoriser``) and ``n_eval`` real images against the
  other images (``novel_real``), and the autoencoder's reconstructions of the memoriser's
  images (``autoencoder``), mean ± sd over the draws;
- the **evaluation sd** at ``n_eval``: the sd over the bank's draws of the teacher's FID at its
  largest Euler NFE and at its converged (Heun) reference, and the median over Table 4's rows,
  seeds and NFEs of a student's sd over draws;
- the **paired standard error** of the Table 4 differences the claims test (:data:`PAIRS` at
  every NFE): mean difference ± SE over the units the claims use
  (:func:`scflow.repro.paired.paired_interval`).
"""

from __future__ import annotations

import math
import statistics

import pandas as pd

from scflow.repro.claim_rules import common_units
from scflow.repro.markdown_tables import num
from scflow.repro.paired import paired_interval
from scflow.repro.tables import MISSING, TABLE_NFES
from scflow.repro.teacher_ref import CONVERGED_METHOD, TEACHER_RUN, converged_nfe
from scflow.repro.units import Unit, UnitTable, unit_value, units_words

FLOORS = {"memoriser": "memoriser floor: n_eval training images against all of them",
          "novel_real": "novel-real floor: n_eval real images against the other images",
          "autoencoder": "autoencoder floor: the memoriser's images through the autoencoder, "
                         "D(E(x)), against all training images"}
"""Notebook 01's floor methods (metric ``fid``, no NFE, one row per draw) and what they are."""
PAIRS = (("+GAN", "CD"), ("+RF", "+GAN"), ("+BI", "+RF"), ("+BI", "CD"), ("+BI", "+GAN"))
"""Table 4 differences shown with their paired SE: the claims' (each term against the row
before it, SCFlow against CD) and SCFlow against +GAN."""


def _sd(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) >= 2 else math.nan


def _draws(cell: dict[Unit, float]) -> list[float]:
    return [v for (_, d), v in sorted(cell.items(), key=lambda kv: kv[0][1] or 0)
            if d is not None and math.isfinite(v)]


def _spread_row(label: str, cell: dict[Unit, float], sd_first: bool = True) -> str:
    """``| label | value | over |`` of one cell's draws (``sd (mean)``, or ``mean ± sd``
    where not ``sd_first``), or what is missing."""
    xs = _draws(cell)
    if len(xs) < 2:
        have = f"one value ({num(next(iter(cell.values())))}), no draws" if cell else MISSING
        return f"| {label} | {have} | - |"
    m, sd = num(statistics.fmean(xs)), num(_sd(xs), 2)
    value = f"sd {sd} (mean {m})" if sd_first else f"{m} ± {sd} (mean ± sd)"
    return f"| {label} | {value} | {len(xs)} draws |"


def _table4_rows(paper: pd.DataFrame) -> dict[str, tuple[str, str]]:
    rows = paper[paper.table == "4"].drop_duplicates("row")
    return {str(r.row): (str(r.run), str(r.method)) for r in rows.itertuples()}


def student_sds(units: UnitTable, paper: pd.DataFrame) -> list[float]:
    """Each Table 4 row's sd over draws of its FID, per seed and NFE (cells with >= 2 draws)."""
    out = []
    for run, method in _table4_rows(paper).values():
        for n in TABLE_NFES["4"]:
            per_seed: dict[int | None, list[float]] = {}
            for (s, d), v in units.cell(run, method, n).items():
                if d is not None and math.isfinite(v):
                    per_seed.setdefault(s, []).append(v)
            out += [_sd(xs) for xs in per_seed.values() if len(xs) >= 2]
    return out


def paired_difference(units: UnitTable, a: tuple[str, str], b: tuple[str, str],
                      nfe: int) -> tuple[float, float, str] | None:
    """(mean, SE, over what) of FID ``a - b`` at ``nfe``, paired on their common units."""
    ca, cb = units.cell(*a, nfe), units.cell(*b, nfe)
    if not ca or not cb:
        return None
    diffs = {}
    for u in common_units([frozenset(ca), frozenset(cb)]):
        xa, xb = unit_value(ca, u), unit_value(cb, u)
        if xa is not None and xb is not None:
            diffs[u] = xa - xb
    if not diffs:
        return None
    iv = paired_interval(diffs)
    return iv.mean, iv.se, units_words(iv.n_seeds, iv.n_draws, True)


def _protocol(units: UnitTable, results: pd.DataFrame) -> str:
    cell = units.cell(TEACHER_RUN, "memoriser", None) or units.cell(TEACHER_RUN, "teacher", 1)
    k = len(_draws(cell))
    fid = results[(results.run == TEACHER_RUN) & (results.metric == "fid")]
    sizes = sorted({int(n) for n in pd.to_numeric(fid.n_samples, errors="coerce").dropna()})
    n = f" of {', '.join(map(str, sizes))} samples each" if sizes else ""
    bank = (f"every run is scored on the same {k} draws{n} of the evaluation bank "
            f"(`scflow.evaluate.bank_noise`)" if k >= 2 else
            "the CSVs hold no draws of the evaluation bank yet (one noise set per run, so no sd "
            "over draws can be shown)")
    return (f"How it was measured: {bank}; the floors are notebook 01's "
            f"(`scflow.metrics.floors`, n_eval real images per draw); sd is the sample sd over "
            f"draws; SE is the one the claims use (over seeds where there are two or more, else "
            f"over draws: `scflow.repro.paired`). An SE over seeds is that of the seeds' means "
            f"on the same draws: a draw's offset, common to every row, is not in it (the sd over "
            f"draws is).")


def noise_markdown(results: pd.DataFrame, paper: pd.DataFrame) -> str:
    """The noise table (module docstring) and the paired differences of Table 4, in Markdown."""
    units = UnitTable(results)
    lines = [_protocol(units, results), "", "| quantity (FID) | value | over |", "|---|---|---|"]
    for method, label in FLOORS.items():
        lines.append(_spread_row(label, units.cell(TEACHER_RUN, method, None), sd_first=False))
    euler = [n for (r, m, k, n) in units.index
             if r == TEACHER_RUN and m == "teacher" and k == "fid" and n is not None]
    if euler:
        lines.append(_spread_row(f"teacher, Euler at NFE {max(euler)}: sd over draws",
                                 units.cell(TEACHER_RUN, "teacher", max(euler))))
    heun = converged_nfe(units)
    lines.append(_spread_row(f"teacher, converged (Heun, NFE {heun}): sd over draws", units.cell(
        TEACHER_RUN, CONVERGED_METHOD, heun)) if heun else
        f"| teacher, converged (Heun): sd over draws | {MISSING} | - |")
    sds = student_sds(units, paper)
    value = (f"{num(statistics.median(sds), 2)} (range {num(min(sds), 2)}-{num(max(sds), 2)})"
             if sds else f"{MISSING} (no student with draws)")
    lines += [f"| a student's sd over draws: median over Table 4's rows, seeds and NFEs | "
              f"{value} | {len(sds)} cells |", ""]
    rows = _table4_rows(paper)
    nfes = TABLE_NFES["4"]
    lines += ["Paired differences of Table 4 (FID, row minus row on the same units): mean ± the "
              "SE the claims use.", "",
              "| difference | over | " + " | ".join(f"NFE {n}" for n in nfes) + " |",
              "|" + "---|" * (len(nfes) + 2)]
    for a, b in PAIRS:
        got = {n: paired_difference(units, rows[a], rows[b], n) for n in nfes}
        over = next((g[2] for g in got.values() if g), "-")
        cells = [MISSING if g is None else f"{g[0]:+.3g}" + ("" if math.isnan(g[1])
                                                          else f" ± {num(g[1], 2)}")
                 for g in got.values()]
        lines.append(f"| {a} - {b} | {over} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
