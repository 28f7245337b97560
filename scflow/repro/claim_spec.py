"""What a claim of the paper is: a :class:`Claim` compares two :class:`Quantity` values (or a
quantity with a constant), each read off the paper's tables by table and row and reduced over
NFE and rows. How a claim is judged: :mod:`scflow.repro.claim_rules`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

OPS = ("<", ">", "<~", ">~")
OVER_NFE = ("mean", "ratio", "max", "min", "max/min")

Getter = Callable[[str, str, int, str], "float | None"]
"""``get(table, row, nfe, metric)`` -> the number, or None if missing."""


@dataclass(frozen=True)
class Quantity:
    """One number from the paper's tables: ``metric`` of ``rows`` at ``nfes``, reduced.

    ``rows``: row names of ``table``, or ``(table, row)`` pairs for rows of another table (a
    claim against "every other row" may span Tables 3 and 4). ``divide_by``: a row of ``table``;
    each NFE's value is first divided by that row's value at the same NFE (e.g. SCFlow / CD).
    ``over_nfe``: ``"mean"`` of the NFEs, ``"ratio"`` = value at the last NFE / at the first
    (how much the curve rises with NFE), ``"max"``, ``"min"``, or ``"max/min"`` (how flat the
    curve is). ``over_rows``: ``"min"`` or ``"max"`` across rows (e.g. "better than every other
    row" compares with the min of the others). ``scale``: a factor on the reduced value (e.g.
    "under a fifth of the teacher's time" compares with 0.2 x the teacher's time).
    """

    table: str
    rows: tuple[str | tuple[str, str], ...]
    nfes: tuple[int, ...]
    metric: str = "fid"
    over_nfe: str = "mean"
    over_rows: str = "min"
    divide_by: str | None = None
    scale: float = 1.0

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

    def rows_text(self) -> str:
        """The rows read, e.g. ``+BI``, ``min(CD / +GAN)``, ``+BI / CD``."""
        names = [r if t == self.table else f"T{t} {r}" for t, r in self.row_cells()]
        rows = f"{self.over_rows}({' / '.join(names)})" if len(names) > 1 else names[0]
        return f"{rows} / {self.divide_by}" if self.divide_by else rows

    def nfe_text(self) -> str:
        """``@NFE 1``, ``@NFE mean 1,2``, ``@NFE 16/NFE 2`` (a ratio), ..."""
        nfe = ",".join(map(str, self.nfes))
        if self.over_nfe == "ratio":
            nfe = f"{self.nfes[-1]}/NFE {self.nfes[0]}"
        elif len(self.nfes) > 1:
            nfe = f"{self.over_nfe} {nfe}"
        return f"@NFE {nfe}"

    def describe(self, brief: bool = False) -> str:
        """``metric T<table> <rows> @NFE <nfes>``; ``brief``: without the metric and table."""
        factor = "" if self.scale == 1 else f"{self.scale:g} x "
        where = "" if brief else f"{self.metric} T{self.table} "
        return f"{factor}{where}{self.rows_text()} {self.nfe_text()}"


Side = Quantity | float
"""A side of a claim: a quantity read off the tables, or a constant threshold."""


@dataclass(frozen=True)
class Claim:
    """A claim of the paper: ``lhs op rhs``, ``op`` one of :data:`OPS` (``<~``: not worse than,
    ``>~``: at least); ``margin`` m, relative to the rhs: the tie band of ``<`` / ``>`` and the
    allowance of ``<~`` / ``>~`` (the rule: :mod:`scflow.repro.claim_rules`)."""

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


def describe_side(side: Side, brief: bool = False) -> str:
    return side.describe(brief) if isinstance(side, Quantity) else f"{side:g}"


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
    return q.scale * (min if q.over_rows == "min" else max)(per_row), []
