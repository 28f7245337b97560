"""The claims' verdicts in words: the report's summary, the claims table and why each claim
came out as it did, from its paired interval.

Everything here is written from :func:`scflow.repro.claims.judge_all`'s frame (one line per
claim: both sides, the verdict, the units and the interval of the decisive difference, the
paper's side); nothing judges. The rule is :mod:`scflow.repro.claim_rules`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from scflow.repro.claim_notes import note_for
from scflow.repro.claim_rules import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, TIE
from scflow.repro.units import units_words

VERDICT_WORDS = {REPRODUCED: "hold in the miniature", NOT_REPRODUCED: "do not hold",
                 TIE: "are ties", INCONCLUSIVE: "are undecided"}
HEADS = {REPRODUCED: "What holds", NOT_REPRODUCED: "What does not hold",
         TIE: "Ties (no difference beyond the margin)", INCONCLUSIVE: "Undecided"}

RULE_LINE = (
    "Rule (`scflow/repro/claim_rules.py`): every run is scored on the same draws of the "
    "evaluation bank, so a claim `a < b` is judged on the **paired** difference d = a - b, "
    "computed unit by unit (a unit: a training seed and a draw, on the units common to the "
    "claim's rows). Its 95% interval is Student's t over seeds where there are two or more "
    "(each seed's mean over its draws is one value), else over the draws of the one seed "
    "(evaluation noise only: training noise is not measured). **Reproduced in miniature** if "
    "the interval lies below 0, **not reproduced** if it lies above 0 (a side of 0 decides "
    "even within the margin), a **tie** if it lies within ±m of the values (m the claim's "
    "margin, relative to b), else **inconclusive**; "
    "`a > b` is the mirror image. For `a <~ b` (not worse than) d = a - (1 + m) b and for "
    "`a >~ b` (at least) d = a - (1 - m) b: reproduced if the interval lies on the allowed "
    "side, not reproduced if on the other, else inconclusive. With one unit only (the "
    "paper's numbers; a row with one seed and no draws) there is no interval and the margin "
    "alone decides: `a < b` reproduced if a < (1 - m) b, not reproduced if a > (1 + m) b, "
    "else inconclusive. A missing number makes a claim inconclusive. The last column applies "
    "the one-unit rule to the paper's own numbers (a check of the rule). In the rules of "
    "Tables 1-2 (T1, T2) the rows keep the paper's names (Ours-0.9B, InstaFlow-0.9B: its "
    "0.9B-parameter models); our side is the miniature's text-to-image nets (run `t2i`).")


def num(x: float | None) -> str:
    """A side of a claim, three significant digits; ``-`` if missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def signed(x: float) -> str:
    """Three significant digits (whole numbers from 1000) with a sign: ``+2.8``, ``-0.41``."""
    return f"{x:+.3g}" if abs(x) < 1000 else f"{x:+.0f}"


def verdict_label(verdict: str, margin: float) -> str:
    """The verdict as the report writes it: a tie says its margin, ``tie (within ±5%)``."""
    return f"{TIE} (within ±{margin * 100:.3g}%)" if verdict == TIE else verdict


def over_words(r: Any) -> str:
    """What a claim's numbers are over: ``3 seeds x 5 draws``, ``5 draws of one seed: ...``,
    ``one value`` (naming the seed where other rows of the claim have more)."""
    words = units_words(r.n_seeds, r.n_draws, evaluation_only=True)
    if r.n_seeds == 1 and len(r.seeds) == 1 and r.n_any_seeds > 1:
        words += f"; seed {r.seeds[0]}, the only one common to its rows"
    return words


def ours_cell(r: Any) -> str:
    """``a vs b`` of ours (means over the claim's units)."""
    return f"{num(r.ours_lhs)} vs {num(r.ours_rhs)}"


def interval_cell(r: Any) -> str:
    """``d = mean [lo, hi] (units)``, or the single difference where there is no interval."""
    if r.missing or math.isnan(r.d_mean):
        return "-"
    if r.over == "none":
        return f"{signed(r.d_mean)} ({over_words(r)})"
    return f"{signed(r.d_mean)} [{signed(r.d_lo)}, {signed(r.d_hi)}] ({over_words(r)})"


_SIDES = {"<": ("below 0", "above 0"), ">": ("above 0", "below 0"),
          "<~": ("at or below 0", "above 0"), ">~": ("at or above 0", "below 0")}
_AGAINST = {"<": "the first is the larger", ">": "the first is the smaller",
            "<~": "the first exceeds the second", ">~": "the first falls short of the second"}


def why(r: Any) -> str:
    """What the miniature shows for a claim and why that verdict, from its line of
    ``judge_all``: the paired interval of d (or the two numbers where there is one unit)."""
    m = f"{r.margin * 100:.3g}%"
    if r.missing:
        more = " ..." if len(r.missing) > 3 else ""
        return f"not judged yet: missing {', '.join(r.missing[:3])}{more}"
    if r.over == "none":
        head = f"ours {ours_cell(r)} ({over_words(r)}): no interval, the margin decides"
        if r.verdict == REPRODUCED:
            return f"{head}: beyond the {m} margin"
        if r.verdict == NOT_REPRODUCED:
            return f"{head}: {_AGAINST[r.op]}, beyond the {m} margin"
        return f"{head}: within the {m} margin, so undecided"
    unit = {"fid": " FID", "": ""}.get(r.unit, f" {r.unit}")
    d = (f"{r.difference}: {signed(r.d_mean)} [{signed(r.d_lo)}, {signed(r.d_hi)}]{unit}, "
         f"{over_words(r)}")
    good, bad = _SIDES[r.op]
    if r.verdict == REPRODUCED:
        return f"{d}; the interval lies {good}"
    if r.verdict == NOT_REPRODUCED:
        return f"{d}; the interval lies {bad}: {_AGAINST[r.op]}"
    if r.verdict == TIE:
        return (f"{d}; the interval lies within ±{num(r.tie_band)} ({m} of {num(r.ours_rhs)}): "
                f"no difference of the size the margin asks for")
    if r.op in ("<~", ">~"):
        return f"{d}; the interval straddles the boundary (0): the units disagree"
    return (f"{d}; the interval contains 0 and reaches beyond ±{num(r.tie_band)} ({m} of "
            f"{num(r.ours_rhs)}): neither a difference nor a tie")


def _paper_side(r: Any) -> str:
    if r.paper_verdict == "n/a":
        return "the paper gives no number for it"
    return f"the paper: {num(r.paper_lhs)} vs {num(r.paper_rhs)}"


def counts_line(judged: pd.DataFrame) -> str:
    """``Of the N claims ..., a hold in the miniature, b do not hold, c are ties and d are
    undecided.``"""
    parts = [f"**{int((judged.verdict == v).sum())} {w}**" for v, w in VERDICT_WORDS.items()]
    return (f"Of the {len(judged)} claims of the paper judged here, {parts[0]}, {parts[1]}, "
            f"{parts[2]} (the 95% interval of the paired difference within the claim's margin) "
            f"and {parts[3]} (an interval across 0 and beyond the margin, one value within the "
            f"margin, or a run missing).")


def summary_markdown(judged: pd.DataFrame) -> str:
    """The report's opening: how many claims hold, and per claim what the miniature shows and
    why (its paired interval), beside the paper's numbers."""
    out = [counts_line(judged), ""]
    for verdict, head in HEADS.items():
        sub = judged[judged.verdict == verdict]
        if sub.empty:
            continue
        out += [f"**{head}** ({len(sub)}):", ""]
        for r in sub.itertuples():
            note = note_for(r.key, r.verdict)
            out.append(f"- {r.claim} ({r.source}): {why(r)}; {_paper_side(r)}."
                       + (f" *Why:* {note}" if note else ""))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def claims_markdown(judged: pd.DataFrame) -> str:
    """The claims table of REPORT.md, every rule written out, with the rule stated above it."""
    lines = [RULE_LINE, "", "| claim | source | rule | ours: a vs b | paired d: mean [95% "
             "interval] (units) | verdict | paper: a vs b (rule) |", "|---|---|---|---|---|---|---|"]
    for r in judged.itertuples():
        v = f"**{verdict_label(r.verdict, r.margin)}**"
        if r.missing:
            v += f" (missing: {', '.join(r.missing[:3])}{' ...' if len(r.missing) > 3 else ''})"
        lines.append(f"| {r.claim} | {r.source} | `{r.rule}` | {ours_cell(r)} | "
                     f"{interval_cell(r)} | {v} | {num(r.paper_lhs)} vs {num(r.paper_rhs)} "
                     f"({r.paper_verdict}) |")
    return "\n".join(lines)
