"""The paper's claims (:data:`CLAIMS`), judged on our results and on the paper's own numbers.

What a claim is and the rule that judges it: :mod:`scflow.repro.claim_rules`. Here: where each
(table, row) a claim reads is found in our CSVs and in the paper's numbers
(:mod:`scflow.repro.tables`) and the verdict of every claim (:func:`judge_all`). No verdict is
written by hand: they are computed from the CSVs every time the report is built; the words the
report says about them are :mod:`scflow.repro.claims_text`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from scflow.repro.claim_rules import (
    Claim,
    Getter,
    Quantity,
    UnitGetter,
    UnitsOf,
    describe_side,
    difference_label,
    judge,
)
from scflow.repro.tables import T2I_PAPER_COLUMNS, load_paper_t2i
from scflow.repro.units import Unit, UnitTable, cell_interval, unit_value


def _locations(paper: pd.DataFrame, paper_t2i: pd.DataFrame) -> dict[tuple[str, str],
                                                                      tuple[str, str]]:
    where = {(r.table, r.row): (r.run, r.method) for r in paper.itertuples()}
    where.update({(r.table, r.row): (r.run, r.method) for r in paper_t2i.itertuples()})
    return where


def getters(results: pd.DataFrame, paper: pd.DataFrame,
            paper_t2i: pd.DataFrame | None = None) -> tuple[Getter, Getter]:
    """(ours, paper's) getters over (table, row): ours via the row's run and method, the mean
    over its units (seed replicas and draws, :mod:`scflow.repro.units`).

    ``paper`` is the long form of Tables 3-6 (FID only); ``paper_t2i`` Tables 1-2 with the
    metrics of :data:`scflow.repro.tables.T2I_PAPER_COLUMNS`.
    """
    paper_t2i = load_paper_t2i() if paper_t2i is None else paper_t2i
    numbers = {(r.table, r.row, int(r.nfe), "fid"): r.paper for r in paper.itertuples()}
    for r in paper_t2i.itertuples():
        for metric, col in T2I_PAPER_COLUMNS.items():
            numbers[(r.table, r.row, int(r.nfe), metric)] = getattr(r, col)
    units, locate = UnitTable(results), _locator(paper, paper_t2i)

    def ours(table: str, row: str, nfe: int, metric: str) -> float | None:
        iv = cell_interval(units.cell(*locate(table, row), nfe, metric))
        return None if iv is None else iv.mean

    def theirs(table: str, row: str, nfe: int, metric: str) -> float | None:
        v = numbers.get((table, row, nfe, metric))
        return None if v is None or math.isnan(v) else float(v)

    return ours, theirs


def _locator(paper: pd.DataFrame,
             paper_t2i: pd.DataFrame) -> Callable[[str, str], tuple[str, str]]:
    where = _locations(paper, paper_t2i)

    def locate(table: str, row: str) -> tuple[str, str]:
        if (table, row) not in where:
            raise KeyError(f"no row {row!r} in table {table} of the paper numbers")
        return where[(table, row)]

    return locate


def unit_getters(results: pd.DataFrame, paper: pd.DataFrame,
                 paper_t2i: pd.DataFrame | None = None) -> tuple[UnitGetter, UnitsOf]:
    """Our numbers per unit ``(seed, draw)`` over (table, row), and the units of each row's
    metric (:mod:`scflow.repro.units`; the rule: :mod:`scflow.repro.claim_rules`)."""
    paper_t2i = load_paper_t2i() if paper_t2i is None else paper_t2i
    units, locate = UnitTable(results), _locator(paper, paper_t2i)

    def get_unit(table: str, row: str, nfe: int, metric: str, unit: Unit) -> float | None:
        return unit_value(units.cell(*locate(table, row), nfe, metric), unit)

    def units_of(table: str, row: str, metric: str) -> frozenset[Unit]:
        return units.row_units(*locate(table, row), metric)

    return get_unit, units_of


def judge_all(claims: tuple[Claim, ...], results: pd.DataFrame,
              paper: pd.DataFrame) -> pd.DataFrame:
    """One line per claim: ours (the sides' means over the claim's common units, the paired
    interval of the decisive difference, the verdict) and the paper's numbers and verdict."""
    ours, theirs = getters(results, paper)
    per_unit = unit_getters(results, paper)
    rows = []
    for c in claims:
        o, p = judge(c, ours, per_unit), judge(c, theirs)
        rows.append({"key": c.key, "claim": c.text, "source": c.source,
                     "rule": f"{c.lhs.describe()} {c.op} {describe_side(c.rhs)} "
                             f"(margin {c.margin * 100:.3g}%)", "op": c.op, "margin": c.margin,
                     "unit": _unit(c), "difference": difference_label(c),
                     "ours_lhs": o["lhs"], "ours_rhs": o["rhs"], "verdict": o["verdict"],
                     "missing": o["missing"], "seeds": o["seeds"], "n_seeds": o["n_seeds"],
                     "n_draws": o["n_draws"], "n_any_seeds": o["n_any"], "over": o["over"],
                     "d_mean": o["d_mean"], "d_se": o["d_se"], "d_lo": o["d_lo"],
                     "d_hi": o["d_hi"], "tie_band": o["tie_band"],
                     "rhs_is_constant": not isinstance(c.rhs, Quantity),
                     "paper_lhs": p["lhs"], "paper_rhs": p["rhs"],
                     "paper_verdict": p["verdict"] if p["lhs"] is not None else "n/a"})
    return pd.DataFrame(rows)


def _unit(c: Claim) -> str:
    """The unit of a claim's difference: its metric, or "" where the sides are ratios."""
    q = c.lhs
    return "" if q.divide_by or q.over_nfe in ("ratio", "max/min") else q.metric


_T4 = (1, 2, 4, 8, 16)


def _q(table: str, row: str | tuple[str | tuple[str, str], ...], nfes: tuple[int, ...],
       **kw: Any) -> Quantity:
    return Quantity(table, (row,) if isinstance(row, str) else row, nfes, **kw)


CLAIMS: tuple[Claim, ...] = (
    Claim("t1_2rf", "text-to-image: one-step SCFlow beats the one-step 2-RF teacher", "Table 1",
          _q("1", "Ours-0.9B", (1,)), "<", _q("1", "2-RF", (1,))),
    Claim("t1_instaflow", "text-to-image: one-step SCFlow beats InstaFlow (2-RF + distill)",
          "Table 1", _q("1", "Ours-0.9B", (1,)), "<",
          _q("1", "InstaFlow-0.9B (2-RF + distill)", (1,))),
    Claim("t1_lcm", "text-to-image: one-step SCFlow beats consistency distillation (LCM)",
          "Table 1", _q("1", "Ours-0.9B", (1,)), "<", _q("1", "LCM (CD)", (1,))),
    Claim("t1_two_step", "text-to-image: SCFlow's two-step sample is not worse than its one-step",
          "Tables 1-2", _q("1", "Ours-0.9B", (2,)), "<~", _q("1", "Ours-0.9B", (1,))),
    Claim("t2_speed", "one-step SCFlow takes under a fifth of the 25-step teacher's time per image",
          "Table 2", _q("2", "Ours-0.9B", (1,), metric="sec_per_image"), "<",
          _q("2", "2-RF", (25,), metric="sec_per_image", scale=0.2)),
    Claim("t3_teacher", "one-step SCFlow beats the teacher's one-step sample", "Table 3",
          _q("3", "Ours", (1,)), "<", _q("3", "LFM (teacher)", (1,))),
    Claim("t3_cd", "SCFlow beats consistency distillation at NFE 1 and 2", "Table 3",
          _q("3", "Ours", (1, 2)), "<", _q("3", "LFM + CD", (1, 2))),
    Claim("t3_rectified", "SCFlow beats 3-stage rectified flow at NFE 1 and 2", "Table 3",
          _q("3", "Ours", (1, 2)), "<", _q("3", "LFM + Rectified + Distill", (1, 2))),
    Claim("t4_cd_degrades", "CD gets worse with more steps (NFE 16 vs 2)", "Table 4, Fig. 4",
          _q("4", "CD", (16,)), ">", _q("4", "CD", (2,))),
    # The paper's FID16 / FID2 is 2.28; 1.3 asks for a clear U-shape, not the paper's size.
    Claim("t4_cd_u_shape", "CD's FID rises clearly from NFE 2 to 16 (FID16 / FID2 >= 1.3)",
          "Table 4, Fig. 4", _q("4", "CD", (2, 16), over_nfe="ratio"), ">~", 1.3, margin=0.0),
    # std_ratio is a ratio of pixel stds over ~1e6 pixels, near 1; its sampling noise is far
    # below the 0.5% margin (seed and draw noise are the paired interval's job).
    # Every sampler's contrast rises with NFE (the teacher's too): the claim is that CD's rises
    # more than SCFlow's, so the rule compares CD's gain with SCFlow's, not CD with itself.
    Claim("fig4_saturation", "CD's samples gain more contrast with more steps than SCFlow's "
          "(oversaturation; std_ratio at NFE 16 / at NFE 1)", "Fig. 4",
          _q("4", "CD", (1, 16), metric="std_ratio", over_nfe="ratio"), ">",
          _q("4", "+BI", (1, 16), metric="std_ratio", over_nfe="ratio"), margin=0.005),
    Claim("fig4_saturation_vs_scflow", "CD's 16-step samples have more contrast than SCFlow's",
          "Figs. 4-6", _q("4", "CD", (16,), metric="std_ratio"), ">",
          _q("4", "+BI", (16,), metric="std_ratio"), margin=0.005),
    Claim("t4_gan", "truncation + GAN repair the one-step sample", "Table 4",
          _q("4", "+GAN", (1,)), "<", _q("4", "CD", (1,))),
    Claim("t4_rf_one_step", "the reflow loss improves the one-step sample further", "Table 4",
          _q("4", "+RF", (1,)), "<", _q("4", "+GAN", (1,))),
    Claim("t4_bi_one_step", "the bidirectional loss improves the one-step sample further",
          "Table 4", _q("4", "+BI", (1,)), "<", _q("4", "+RF", (1,))),
    Claim("t4_rf_flattens", "the reflow loss flattens FID over NFE (FID16 / FID1)", "Table 4",
          _q("4", "+RF", _T4, over_nfe="ratio"), "<", _q("4", "+GAN", _T4, over_nfe="ratio")),
    Claim("t4_bi", "the bidirectional loss improves every NFE (mean FID 1-16)", "Table 4",
          _q("4", "+BI", _T4), "<", _q("4", "+RF", _T4)),
    Claim("t4_flat", "full SCFlow is not worse at NFE 16 than at NFE 1", "Table 4, Fig. 5",
          _q("4", "+BI", (16,)), "<~", _q("4", "+BI", (1,))),
    # The paper's max/min is 8.06 / 7.24 = 1.11; 1.5 still reads as a flat curve.
    Claim("t4_flat_max_min", "full SCFlow's FID is flat over NFE 1-16 (max / min <= 1.5)",
          "Table 4, Fig. 5", _q("4", "+BI", _T4, over_nfe="max/min"), "<~", 1.5, margin=0.0),
    Claim("t4_bi_vs_cd_every_nfe", "full SCFlow is not worse than CD at any NFE 1-16 "
          "(max over NFE of FID SCFlow / CD)", "Table 4",
          _q("4", "+BI", _T4, over_nfe="max", divide_by="CD"), "<~", 1.0),
    Claim("fig6_consistency", "SCFlow's 4-step sample stays closest to its 1-step sample, "
          "closer than every other distilled row's (rectified flow included)", "Fig. 6",
          _q("4", "+BI", (4,), metric="consistency_rmse"), "<",
          _q("4", ("CD", "+GAN", "+RF", ("3", "LFM + Rectified"),
                   ("3", "LFM + Rectified + Distill")), (4,), metric="consistency_rmse")),
    Claim("t5_weights", "weights (0.1, 0.1, 0.1) are the best of Table 5 (mean FID 1-16)",
          "Table 5", _q("5", "(0.1, 0.1, 0.1)", _T4), "<",
          _q("5", ("(1, 1, 1)", "(0.4, 0.4, 0.4)", "(0.2, 0.2, 0.2)", "(1, 0.1, 0.1)",
                   "(0.1, 1, 1)"), _T4)),
    Claim("t6_trunc", "truncation t_trunc 0.4 beats no truncation (mean FID 1-16)", "Table 6",
          _q("6", "t_trunc 0.4", _T4), "<", _q("6", "t_trunc 0", _T4)),
    Claim("t6_skip", "time skip t_skip 0.1 beats 0.2 (mean FID 1-16)", "Table 6",
          _q("6", "t_skip 0.1", _T4), "<", _q("6", "t_skip 0.2", _T4)),
)
"""The claims judged in REPORT.md, in the order of the paper's tables."""
