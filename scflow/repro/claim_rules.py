"""What a claim of the paper is (an explicit, testable comparison) and the rule that judges it.

Each :class:`Claim` compares two :class:`Quantity` values read off the paper's tables (by table
and row, so the same claim can be judged on our numbers AND on the paper's own numbers, which
checks that the rule encodes what the paper says), or a quantity with a constant (e.g. "FID
max/min over NFE 1-16 <= 1.5"). The verdict rule (:func:`verdict`), with a relative tie margin
``m`` (default 5%: one seed and a few thousand samples move FID by a few percent, so smaller
differences are not evidence either way):

- ``lhs < rhs`` claims: **reproduced in miniature** if ``lhs < (1 - m) rhs``; **not reproduced**
  if ``lhs > (1 + m) rhs``; otherwise **inconclusive** (a tie).
- ``lhs > rhs``: the mirror image.
- ``lhs <~ rhs`` ("not worse than"): reproduced if ``lhs <= (1 + m) rhs``, else not reproduced.
- ``lhs >~ rhs`` ("at least"): reproduced if ``lhs >= (1 - m) rhs``, else not reproduced.
- any number missing (run not done): **inconclusive**, saying what is missing.

**Seeds.** A row run with several seeds (replica runs, see :func:`scflow.repro.tables.seed_replicas`)
is judged against its seed spread. Both sides are computed per seed, on the seeds common to
every row the claim reads; the sides shown are the means over those seeds and the margin rule
above is applied to the means. The per-seed difference ``d_s`` is ``lhs_s - rhs_s`` for ``<``
and ``>``, and the distance to the rule's boundary, ``lhs_s - (1 + m) rhs_s`` for ``<~`` (``(1 -
m)`` for ``>~``), whose sign decides those verdicts. A "reproduced" or "not reproduced" verdict
becomes **inconclusive** when ``|mean(d)| <= 2 SE``, ``SE = std(d) / sqrt(n)`` (sample std over
the ``n >= 2`` common seeds): the difference is then within the seed-to-seed noise. With one
common seed the margin rule alone decides, as before.

The claims themselves are :data:`scflow.repro.claims.CLAIMS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REPRODUCED = "reproduced in miniature"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
OPS = ("<", ">", "<~", ">~")
OVER_NFE = ("mean", "ratio", "max", "min", "max/min")
SPREAD_SE = 2.0
"""A verdict needs the mean per-seed difference beyond this many standard errors."""

Getter = Callable[[str, str, int, str], "float | None"]
"""``get(table, row, nfe, metric)`` -> the number, or None if missing."""
SeededGetter = Callable[[str, str, int, str, int], "float | None"]
"""``get(table, row, nfe, metric, seed)`` -> that seed's number, or None if missing."""
SeedsOf = Callable[[str, str], "tuple[int, ...]"]
"""``seeds(table, row)`` -> the seeds our results hold for that row (empty if none)."""


@dataclass(frozen=True)
class Quantity:
    """One number from the paper's tables: ``metric`` of ``rows`` at ``nfes``, reduced.

    ``rows``: row names of ``table``, or ``(table, row)`` pairs for rows of another table (a
    claim against "every other row" may span Tables 3 and 4). ``divide_by``: a row of ``table``;
    each NFE's value is first divided by that row's value at the same NFE (e.g. SCFlow / CD).
    ``over_nfe``: ``"mean"`` of the NFEs, ``"ratio"`` = value at the last NFE / at the first
    (how much the curve rises with NFE), ``"max"``, ``"min"``, or ``"max/min"`` (how flat the
    curve is). ``over_rows``: ``"min"`` or ``"max"`` across rows (e.g. "better than every other
    row" compares with the min of the others).
    """

    table: str
    rows: tuple[str | tuple[str, str], ...]
    nfes: tuple[int, ...]
    metric: str = "fid"
    over_nfe: str = "mean"
    over_rows: str = "min"
    divide_by: str | None = None

    def __post_init__(self) -> None:
        if self.over_nfe not in OVER_NFE:
            raise ValueError(f"over_nfe must be one of {OVER_NFE} (got {self.over_nfe!r})")
        if self.over_rows not in ("min", "max"):
            raise ValueError(f"over_rows must be 'min' or 'max' (got {self.over_rows!r})")
        if not self.rows or not self.nfes:
            raise ValueError("a Quantity needs at least one row and one NFE")

    def row_cells(self) -> list[tuple[str, str]]:
        """The (table, row) pairs reduced over rows."""
        return [r if isinstance(r, tuple) else (self.table, r) for r in self.rows]

    def cells(self) -> list[tuple[str, str]]:
        """Every (table, row) this quantity reads (``divide_by`` included)."""
        extra = [(self.table, self.divide_by)] if self.divide_by else []
        return self.row_cells() + extra

    def describe(self) -> str:
        names = [r if t == self.table else f"T{t} {r}" for t, r in self.row_cells()]
        rows = f"{self.over_rows}({' / '.join(names)})" if len(names) > 1 else names[0]
        if self.divide_by:
            rows = f"{rows} / {self.divide_by}"
        nfe = ",".join(map(str, self.nfes))
        if self.over_nfe == "ratio":
            nfe = f"{self.nfes[-1]}/NFE {self.nfes[0]}"
        elif len(self.nfes) > 1:
            nfe = f"{self.over_nfe} {nfe}"
        return f"{self.metric} T{self.table} {rows} @NFE {nfe}"


Side = Quantity | float
"""A side of a claim: a quantity read off the tables, or a constant threshold."""


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: ``lhs op rhs`` (see the module docstring for the rule)."""

    key: str
    text: str
    source: str
    lhs: Quantity
    op: str
    rhs: Side
    margin: float = 0.05

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op must be one of {OPS} (got {self.op!r})")
        if not 0 <= self.margin < 1:
            raise ValueError(f"margin must be in [0, 1) (got {self.margin})")

    def cells(self) -> list[tuple[str, str]]:
        """Every (table, row) the claim reads, both sides."""
        return self.lhs.cells() + (self.rhs.cells() if isinstance(self.rhs, Quantity) else [])


def describe_side(side: Side) -> str:
    return side.describe() if isinstance(side, Quantity) else f"{side:g}"


def _reduce(values: list[float], how: str) -> float:
    if how == "mean":
        return sum(values) / len(values)
    if how == "ratio":
        return values[-1] / values[0] if values[0] else math.inf
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    lo = min(values)  # "max/min"
    return max(values) / lo if lo > 0 else math.inf


def quantity_value(q: Side, get: Getter) -> tuple[float | None, list[str]]:
    """``(value, missing)``: the reduced number, or None with what was missing."""
    if not isinstance(q, Quantity):
        return float(q), []

    def one(table: str, row: str, n: int) -> float | None:
        v = get(table, row, n, q.metric)
        if v is None or math.isnan(v):
            missing.append(f"T{table} {row} NFE {n}")
            return None
        return v

    per_row, missing = [], []
    for table, row in q.row_cells():
        vals = []
        for n in q.nfes:
            v = one(table, row, n)
            if q.divide_by:
                d = one(q.table, q.divide_by, n)
                v = None if v is None or d is None else (v / d if d else math.inf)
            vals.append(v)
        if all(v is not None for v in vals):
            per_row.append(_reduce(vals, q.over_nfe))
    if missing:
        return None, list(dict.fromkeys(missing))
    return (min if q.over_rows == "min" else max)(per_row), []


def verdict(lhs: float | None, op: str, rhs: float | None, margin: float) -> str:
    """The documented margin rule (module docstring) on two numbers."""
    if lhs is None or rhs is None or math.isnan(lhs) or math.isnan(rhs):
        return INCONCLUSIVE
    if op == "<~":
        return REPRODUCED if lhs <= (1 + margin) * rhs else NOT_REPRODUCED
    if op == ">~":
        return REPRODUCED if lhs >= (1 - margin) * rhs else NOT_REPRODUCED
    if op == ">":
        lhs, rhs = -lhs, -rhs  # a > b  <=>  -a < -b; the margins mirror too
    lo, hi = sorted(((1 - margin) * rhs, (1 + margin) * rhs))
    if lhs < lo:
        return REPRODUCED
    if lhs > hi:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def decisive_difference(lhs: float, op: str, rhs: float, margin: float) -> float:
    """The difference whose sign the verdict turns on: ``lhs - rhs`` for ``<`` / ``>``, the
    distance to the boundary ``lhs - (1 + m) rhs`` for ``<~`` and ``lhs - (1 - m) rhs`` for
    ``>~`` (a tie is what those claims allow, so only the boundary matters)."""
    if op == "<~":
        return lhs - (1 + margin) * rhs
    if op == ">~":
        return lhs - (1 - margin) * rhs
    return lhs - rhs


def spread_verdict(margin_verdict: str, diffs: list[float]) -> tuple[str, float, float]:
    """``(verdict, mean difference, SPREAD_SE standard errors)`` over per-seed differences.

    A decided verdict becomes inconclusive when ``|mean(d)| <= 2 std(d) / sqrt(n)`` (module
    docstring); with fewer than two seeds the margin verdict stands and the spread is NaN.
    """
    n = len(diffs)
    if n < 2:
        return margin_verdict, (diffs[0] if diffs else math.nan), math.nan
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    band = SPREAD_SE * sd / math.sqrt(n)
    if margin_verdict != INCONCLUSIVE and abs(mean) <= band:
        return INCONCLUSIVE, mean, band
    return margin_verdict, mean, band


def _sd(xs: list[float]) -> float:
    if len(xs) < 2:
        return math.nan
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _at_seed(get_seed: SeededGetter, seed: int) -> Getter:
    """The getter of one seed's numbers."""
    def get(table: str, row: str, nfe: int, metric: str) -> float | None:
        return get_seed(table, row, nfe, metric, seed)
    return get


def judge(claim: Claim, get: Getter,
          seeded: tuple[SeededGetter, SeedsOf] | None = None) -> dict[str, Any]:
    """Evaluate one claim: both sides, verdict, what was missing, and the seed spread.

    ``get`` gives one number per cell (the paper's, or our mean over seeds); ``seeded``, if
    given, gives per-seed numbers and the seeds per row, so the claim is judged per seed on the
    seeds common to its rows (module docstring).
    """
    common: list[int] = []
    n_any = 0  # seeds of the best-replicated row, to say when a claim uses fewer
    if seeded is not None:
        get_seed, seeds_of = seeded
        sets = [set(seeds_of(t, r)) for t, r in claim.cells()]
        common = sorted(set.intersection(*sets)) if sets else []
        n_any = max(map(len, sets), default=0)
    out = {"key": claim.key, "lhs": None, "rhs": None, "missing": [], "seeds": common,
           "n_any": n_any, "lhs_sd": math.nan, "rhs_sd": math.nan, "diff": math.nan,
           "band": math.nan}
    if len(common) < 2:  # one value per cell: that seed's, or the getter's (no spread)
        g = _at_seed(get_seed, common[0]) if common else get
        lhs, miss_l = quantity_value(claim.lhs, g)
        rhs, miss_r = quantity_value(claim.rhs, g)
        v = verdict(lhs, claim.op, rhs, claim.margin)
        return out | {"lhs": lhs, "rhs": rhs, "missing": miss_l + miss_r, "verdict": v,
                      "margin_verdict": v}
    lhs_s, rhs_s, missing = [], [], []
    for s in common:
        g = _at_seed(get_seed, s)
        lv, ml = quantity_value(claim.lhs, g)
        rv, mr = quantity_value(claim.rhs, g)
        missing += [f"{x} (seed {s})" for x in ml + mr]
        lhs_s.append(lv)
        rhs_s.append(rv)
    if missing:
        return out | {"missing": missing, "verdict": INCONCLUSIVE,
                      "margin_verdict": INCONCLUSIVE}
    lhs, rhs = sum(lhs_s) / len(common), sum(rhs_s) / len(common)
    v = verdict(lhs, claim.op, rhs, claim.margin)
    diffs = [decisive_difference(a, claim.op, b, claim.margin)
             for a, b in zip(lhs_s, rhs_s, strict=True)]
    final, diff, band = spread_verdict(v, diffs)
    return out | {"lhs": lhs, "rhs": rhs, "verdict": final, "margin_verdict": v,
                  "lhs_sd": _sd(lhs_s), "rhs_sd": _sd(rhs_s), "diff": diff, "band": band}
