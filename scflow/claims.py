"""The paper's claims as explicit, testable comparisons, and the rule that judges them.

Each :class:`Claim` compares two :class:`Quantity` values read off the paper's tables (by table
and row, so the same claim can be judged on our numbers AND on the paper's own numbers, which
checks that the rule encodes what the paper says). The verdict rule (:func:`verdict`), with a
relative tie margin ``m`` (default 5%: one seed and a few thousand samples move FID by a few
percent, so smaller differences are not evidence either way):

- ``lhs < rhs`` claims: **reproduced in miniature** if ``lhs < (1 - m) rhs``; **not reproduced**
  if ``lhs > (1 + m) rhs``; otherwise **inconclusive** (a tie).
- ``lhs > rhs``: the mirror image.
- ``lhs <~ rhs`` ("not worse than"): reproduced if ``lhs <= (1 + m) rhs``, else not reproduced.
- any number missing (run not done): **inconclusive**, saying what is missing.

No verdict is written by hand: they are computed from the CSVs every time the report is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

REPRODUCED = "reproduced in miniature"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
OPS = ("<", ">", "<~")

Getter = Callable[[str, str, int, str], "float | None"]
"""``get(table, row, nfe, metric)`` -> the number, or None if missing."""


@dataclass(frozen=True)
class Quantity:
    """One number from a paper table: ``metric`` of ``rows`` at ``nfes``, reduced.

    ``over_nfe``: ``"mean"`` of the NFEs, or ``"ratio"`` = value at the last NFE / at the first
    (how much the curve rises with NFE). ``over_rows``: ``"min"`` or ``"max"`` across rows
    (e.g. "better than every other row" compares with the min of the others).
    """

    table: str
    rows: tuple[str, ...]
    nfes: tuple[int, ...]
    metric: str = "fid"
    over_nfe: str = "mean"
    over_rows: str = "min"

    def describe(self) -> str:
        rows = " / ".join(self.rows) if len(self.rows) > 1 else self.rows[0]
        rows = f"{self.over_rows}({rows})" if len(self.rows) > 1 else rows
        nfe = ",".join(map(str, self.nfes))
        if self.over_nfe == "ratio":
            nfe = f"{self.nfes[-1]}/NFE {self.nfes[0]}"
        elif len(self.nfes) > 1:
            nfe = f"mean {nfe}"
        return f"{self.metric} T{self.table} {rows} @NFE {nfe}"


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: ``lhs op rhs`` (see the module docstring for the rule)."""

    key: str
    text: str
    source: str
    lhs: Quantity
    op: str
    rhs: Quantity
    margin: float = 0.05

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op must be one of {OPS} (got {self.op!r})")


def quantity_value(q: Quantity, get: Getter) -> tuple[float | None, list[str]]:
    """``(value, missing)``: the reduced number, or None with what was missing."""
    per_row, missing = [], []
    for row in q.rows:
        vals = [get(q.table, row, n, q.metric) for n in q.nfes]
        gaps = [f"T{q.table} {row} NFE {n}" for n, v in zip(q.nfes, vals, strict=True)
                if v is None or math.isnan(v)]
        if gaps:
            missing += gaps
            continue
        if q.over_nfe == "mean":
            per_row.append(sum(vals) / len(vals))
        elif q.over_nfe == "ratio":
            per_row.append(vals[-1] / vals[0] if vals[0] else math.inf)
        else:
            raise ValueError(f"unknown over_nfe {q.over_nfe!r}")
    if missing:
        return None, missing
    return (min if q.over_rows == "min" else max)(per_row), []


def verdict(lhs: float | None, op: str, rhs: float | None, margin: float) -> str:
    """The documented rule (module docstring) on two numbers."""
    if lhs is None or rhs is None or math.isnan(lhs) or math.isnan(rhs):
        return INCONCLUSIVE
    if op == "<~":
        return REPRODUCED if lhs <= (1 + margin) * rhs else NOT_REPRODUCED
    if op == ">":
        lhs, rhs = -lhs, -rhs  # a > b  <=>  -a < -b; the margins mirror too
    lo, hi = sorted(((1 - margin) * rhs, (1 + margin) * rhs))
    if lhs < lo:
        return REPRODUCED
    if lhs > hi:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def judge(claim: Claim, get: Getter) -> dict[str, Any]:
    """Evaluate one claim: lhs, rhs, verdict and what was missing."""
    lhs, miss_l = quantity_value(claim.lhs, get)
    rhs, miss_r = quantity_value(claim.rhs, get)
    return {"key": claim.key, "lhs": lhs, "rhs": rhs, "missing": miss_l + miss_r,
            "verdict": verdict(lhs, claim.op, rhs, claim.margin)}


def getters(results: pd.DataFrame, paper: pd.DataFrame,
            paper_t2i: pd.DataFrame | None = None) -> tuple[Getter, Getter]:
    """(ours, paper's) getters over (table, row): ours via the row's run and method.

    ``paper`` is the long form of Tables 3-6 (FID only); ``paper_t2i`` Tables 1-2 with the
    metrics of :data:`scflow.report.T2I_PAPER_COLUMNS`.
    """
    from scflow.report import T2I_PAPER_COLUMNS, load_paper_t2i, our_value

    paper_t2i = load_paper_t2i() if paper_t2i is None else paper_t2i
    where = {(r.table, r.row): (r.run, r.method) for r in paper.itertuples()}
    where.update({(r.table, r.row): (r.run, r.method) for r in paper_t2i.itertuples()})
    numbers = {(r.table, r.row, int(r.nfe), "fid"): r.paper for r in paper.itertuples()}
    for r in paper_t2i.itertuples():
        for metric, col in T2I_PAPER_COLUMNS.items():
            numbers[(r.table, r.row, int(r.nfe), metric)] = getattr(r, col)

    def ours(table: str, row: str, nfe: int, metric: str) -> float | None:
        if (table, row) not in where:
            raise KeyError(f"no row {row!r} in table {table} of the paper numbers")
        return our_value(results, *where[(table, row)], nfe, metric)

    def theirs(table: str, row: str, nfe: int, metric: str) -> float | None:
        v = numbers.get((table, row, nfe, metric))
        return None if v is None or math.isnan(v) else float(v)

    return ours, theirs


def judge_all(claims: tuple[Claim, ...], results: pd.DataFrame,
              paper: pd.DataFrame) -> pd.DataFrame:
    """One line per claim: ours and the paper's numbers and the verdict of each."""
    ours, theirs = getters(results, paper)
    rows = []
    for c in claims:
        o, p = judge(c, ours), judge(c, theirs)
        rows.append({"key": c.key, "claim": c.text, "source": c.source,
                     "rule": f"{c.lhs.describe()} {c.op} {c.rhs.describe()} (margin {c.margin:.0%})",
                     "ours_lhs": o["lhs"], "ours_rhs": o["rhs"], "verdict": o["verdict"],
                     "missing": o["missing"], "paper_lhs": p["lhs"], "paper_rhs": p["rhs"],
                     "paper_verdict": p["verdict"] if p["lhs"] is not None else "n/a"})
    return pd.DataFrame(rows)


def claims_markdown(claims: tuple[Claim, ...], results: pd.DataFrame, paper: pd.DataFrame) -> str:
    """The claims table of REPORT.md, with the rule stated above it."""
    df = judge_all(claims, results, paper)

    def n(x: float | None) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"

    lines = [
        "Rule (`scflow/claims.py`): for a claim `a < b`, **reproduced in miniature** if "
        "a < (1 - m) b, **not reproduced** if a > (1 + m) b, else **inconclusive** (a tie within "
        "the margin m); `a <~ b` means a <= (1 + m) b; a missing number makes it inconclusive. "
        "The last column applies the same rule to the paper's own numbers (a check of the rule).",
        "", "| claim | source | rule | ours: a vs b | verdict | paper: a vs b (rule) |",
        "|---|---|---|---|---|---|"]
    for r in df.itertuples():
        v = f"**{r.verdict}**"
        if r.missing:
            v += f" (missing: {', '.join(r.missing[:3])}{' ...' if len(r.missing) > 3 else ''})"
        lines.append(f"| {r.claim} | {r.source} | `{r.rule}` | {n(r.ours_lhs)} vs "
                     f"{n(r.ours_rhs)} | {v} | {n(r.paper_lhs)} vs {n(r.paper_rhs)} "
                     f"({r.paper_verdict}) |")
    return "\n".join(lines)


_T4 = (1, 2, 4, 8, 16)


def _q(table: str, row: str | tuple[str, ...], nfes: tuple[int, ...], **kw: Any) -> Quantity:
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
          _q("2", "2-RF", (25,), metric="sec_per_image"), margin=0.8),
    Claim("t3_teacher", "one-step SCFlow beats the teacher's one-step sample", "Table 3",
          _q("3", "Ours", (1,)), "<", _q("3", "LFM (teacher)", (1,))),
    Claim("t3_cd", "SCFlow beats consistency distillation at NFE 1 and 2", "Table 3",
          _q("3", "Ours", (1, 2)), "<", _q("3", "LFM + CD", (1, 2))),
    Claim("t3_rectified", "SCFlow beats 3-stage rectified flow at NFE 1 and 2", "Table 3",
          _q("3", "Ours", (1, 2)), "<", _q("3", "LFM + Rectified + Distill", (1, 2))),
    Claim("t4_cd_degrades", "CD gets worse with more steps (NFE 16 vs 2)", "Table 4, Fig. 4",
          _q("4", "CD", (16,)), ">", _q("4", "CD", (2,))),
    Claim("fig4_saturation", "CD's samples gain contrast with more steps (oversaturation)",
          "Fig. 4", _q("4", "CD", (16,), metric="std_ratio"), ">",
          _q("4", "CD", (1,), metric="std_ratio"), margin=0.02),
    Claim("t4_gan", "truncation + GAN repair the one-step sample", "Table 4",
          _q("4", "+GAN", (1,)), "<", _q("4", "CD", (1,))),
    Claim("t4_rf_flattens", "the reflow loss flattens FID over NFE (FID16 / FID1)", "Table 4",
          _q("4", "+RF", _T4, over_nfe="ratio"), "<", _q("4", "+GAN", _T4, over_nfe="ratio")),
    Claim("t4_bi", "the bidirectional loss improves every NFE (mean FID 1-16)", "Table 4",
          _q("4", "+BI", _T4), "<", _q("4", "+RF", _T4)),
    Claim("t4_flat", "full SCFlow is not worse at NFE 16 than at NFE 1", "Table 4, Fig. 5",
          _q("4", "+BI", (16,)), "<~", _q("4", "+BI", (1,))),
    Claim("fig6_consistency", "SCFlow's 4-step sample stays closest to its 1-step sample",
          "Fig. 6", _q("4", "+BI", (4,), metric="consistency_rmse"), "<",
          _q("4", ("CD", "+GAN"), (4,), metric="consistency_rmse")),
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
