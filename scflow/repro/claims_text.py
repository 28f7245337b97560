"""The claims' verdicts in words: the report's summary, the claims table and why a claim is not
reproduced or undecided.

Everything here is written from :func:`scflow.repro.claims.judge_all`'s frame (one line per
claim: both sides, the verdict, the seeds, the paper's side); nothing judges. The rule is
:mod:`scflow.repro.claim_rules`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from scflow.repro.claim_rules import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED

VERDICT_WORDS = {REPRODUCED: "hold in the miniature", NOT_REPRODUCED: "do not hold",
                 INCONCLUSIVE: "are undecided"}

RULE_LINE = (
    "Rule (`scflow/repro/claim_rules.py`): for a claim `a < b`, **reproduced in miniature** if "
    "a < (1 - m) b, **not reproduced** if a > (1 + m) b, else **inconclusive** (a tie within "
    "the margin m); `a <~ b` means a <= (1 + m) b and `a >~ b` means a >= (1 - m) b; a missing "
    "number makes it inconclusive. Where rows have several seeds, both sides are computed per "
    "seed on the seeds common to the claim's rows and shown as mean ± std; a decided verdict "
    "becomes inconclusive when the mean per-seed difference (a - b, or the distance to the "
    "boundary for `<~` / `>~`) is within 2 standard errors of zero. The last column applies "
    "the same rule to the paper's own numbers (a check of the rule). In the rules of Tables "
    "1-2 (T1, T2) the rows keep the paper's names (Ours-0.9B, InstaFlow-0.9B: its "
    "0.9B-parameter models); our side is the miniature's text-to-image nets (run `t2i`).")


def num(x: float | None) -> str:
    """A side of a claim, three significant digits; ``-`` if missing."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def _pm(x: float | None, sd: float) -> str:
    return num(x) if math.isnan(sd) else f"{num(x)} ± {num(sd)}"


def ours_cell(r: Any) -> str:
    """``a vs b`` of ours, with the seeds they are computed on where that needs saying."""
    a, b = _pm(r.ours_lhs, r.ours_lhs_sd), _pm(r.ours_rhs, r.ours_rhs_sd)
    if r.rhs_is_constant:
        b = num(r.ours_rhs)
    if len(r.seeds) > 1:
        return f"{a} vs {b} ({len(r.seeds)} seeds)"
    if len(r.seeds) == 1 and r.n_any_seeds > 1:
        return f"{a} vs {b} (seed {r.seeds[0]}, the only one common to its rows)"
    return f"{a} vs {b}"


_AGAINST = {"<": "the first is the larger", ">": "the first is the smaller",
            "<~": "the first exceeds the second", ">~": "the first falls short of the second"}


def why(r: Any) -> str:
    """Why a claim is not reproduced or undecided, in words, from its line of ``judge_all``."""
    m = f"{r.margin * 100:.3g}%"
    if r.verdict == REPRODUCED:
        return f"ours {ours_cell(r)}"
    if r.missing:
        more = " ..." if len(r.missing) > 3 else ""
        return f"not judged yet: missing {', '.join(r.missing[:3])}{more}"
    if r.verdict == NOT_REPRODUCED:
        return f"ours {ours_cell(r)}: {_AGAINST[r.op]}, beyond the {m} margin"
    if r.margin_verdict != r.verdict:  # decided by the margin, undone by the seed spread
        return (f"ours {ours_cell(r)}: by the margin alone {r.margin_verdict}, but the mean "
                f"per-seed difference {num(r.seed_diff)} is within two standard errors "
                f"({num(r.seed_band)}): the seeds disagree")
    return f"ours {ours_cell(r)}: a tie, within the {m} margin"


def _paper_side(r: Any) -> str:
    if r.paper_verdict == "n/a":
        return "the paper gives no number for it"
    return f"the paper: {num(r.paper_lhs)} vs {num(r.paper_rhs)}"


def counts_line(judged: pd.DataFrame) -> str:
    """``Of the N claims ..., a hold in the miniature, b do not hold and c are undecided.``"""
    parts = [f"**{int((judged.verdict == v).sum())} {w}**" for v, w in VERDICT_WORDS.items()]
    return (f"Of the {len(judged)} claims of the paper judged here, {parts[0]}, {parts[1]} "
            f"and {parts[2]} (a tie within the rule's margin, within the seed spread, or a "
            f"run missing).")


def summary_markdown(judged: pd.DataFrame) -> str:
    """The report's opening: how many claims hold, which, and why the others do not."""
    out = [counts_line(judged), ""]
    for verdict, head in ((REPRODUCED, "What holds"), (NOT_REPRODUCED, "What does not hold"),
                          (INCONCLUSIVE, "Undecided")):
        sub = judged[judged.verdict == verdict]
        if sub.empty:
            continue
        out += [f"**{head}** ({len(sub)}):", ""]
        for r in sub.itertuples():
            detail = "" if verdict == REPRODUCED else f": {why(r)}; {_paper_side(r)}"
            out.append(f"- {r.claim} ({r.source}){detail}.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def claims_markdown(judged: pd.DataFrame) -> str:
    """The claims table of REPORT.md, every rule written out, with the rule stated above it."""
    lines = [RULE_LINE, "", "| claim | source | rule | ours: a vs b | verdict | "
             "paper: a vs b (rule) |", "|---|---|---|---|---|---|"]
    for r in judged.itertuples():
        v = f"**{r.verdict}**"
        if r.missing:
            v += f" (missing: {', '.join(r.missing[:3])}{' ...' if len(r.missing) > 3 else ''})"
        elif r.verdict != r.margin_verdict:
            v += (f" (within the seed spread: mean difference {num(r.seed_diff)}, 2 SE "
                  f"{num(r.seed_band)}; by the margin alone {r.margin_verdict})")
        lines.append(f"| {r.claim} | {r.source} | `{r.rule}` | {ours_cell(r)} | {v} | "
                     f"{num(r.paper_lhs)} vs {num(r.paper_rhs)} ({r.paper_verdict}) |")
    return "\n".join(lines)
