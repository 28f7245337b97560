"""What a claim of the paper is (an explicit, testable comparison) and the rule that judges it.

Each :class:`Claim` compares two :class:`Quantity` values read off the paper's tables (by table
and row, so the same claim can be judged on our numbers AND on the paper's own numbers, which
checks that the rule encodes what the paper says), or a quantity with a constant (e.g. "FID
max/min over NFE 1-16 <= 1.5").

**Units.** Our numbers are held per unit, a training seed and a draw of the evaluation bank
(:mod:`scflow.repro.units`). A claim is judged on the units common to every cell (table, row,
metric) it reads (:func:`common_units`: the teacher's draws pair with every seed's same draw;
where the cells share no draw, e.g. a CSV without draws beside one with them, each seed's mean
over its draws is one unit). Both sides are computed unit by unit (the reductions over NFE, rows and
``divide_by`` of :class:`Quantity`), and ``d`` is the **decisive difference** per unit
(:func:`decisive_difference`): ``a - b`` for ``<`` and ``>`` (``a - c`` for a constant ``c``),
the distance to the boundary ``a - (1 + m) b`` for ``<~`` and ``a - (1 - m) b`` for ``>~``. The
noise of a draw moves both sides together and cancels in ``d``. The 95% interval of mean(d) is
:func:`scflow.repro.paired.paired_interval`'s: Student's t over seeds when the claim has two or
more common seeds, else over draws (then it measures evaluation noise only, not training noise).

**The verdict** (:func:`interval_verdict`), with ``m`` the claim's margin (default 5%):

- ``a < b``: **reproduced in miniature** if the interval lies below 0; **not reproduced** if it
  lies above 0; a **tie** if the whole interval lies within ``±m |mean(b)|`` (no difference of
  the size the margin calls a difference); otherwise **inconclusive**. An interval on one side
  of 0 decides even where it also lies within the margin: the difference is small, but measured.
- ``a > b``: the mirror image.
- ``a <~ b`` ("not worse than") and ``a >~ b`` ("at least"): reproduced if the interval of the
  distance to the boundary lies on the allowed side (``<= 0``, resp. ``>= 0``), not reproduced
  if it lies on the other side, else inconclusive.
- **One unit only** (the paper's own numbers; a run with one seed and no draws): there is no
  interval and the margin rule decides (:func:`verdict`): ``a < b`` reproduced if
  ``a < (1 - m) b``, not reproduced if ``a > (1 + m) b``, else inconclusive; ``a <~ b``
  reproduced if ``a <= (1 + m) b``, else not; ``>`` and ``>~`` mirrored.
- any number missing (run not done): **inconclusive**, saying what is missing.

The claims themselves are :data:`scflow.repro.claims.CLAIMS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from scflow.repro.claim_spec import (  # noqa: F401 - what a claim is, importable from here too
    OPS,
    OVER_NFE,
    Claim,
    Getter,
    Quantity,
    Side,
    describe_side,
    quantity_value,
)
from scflow.repro.paired import Interval, paired_interval
from scflow.repro.units import Unit

REPRODUCED = "reproduced in miniature"
NOT_REPRODUCED = "not reproduced"
TIE = "tie"
INCONCLUSIVE = "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, TIE, INCONCLUSIVE)
UnitGetter = Callable[[str, str, int, str, Unit], "float | None"]
"""``get(table, row, nfe, metric, (seed, draw))`` -> that unit's number, or None if missing
(draw None: the mean over the seed's draws; a shared row ignores the seed)."""
UnitsOf = Callable[[str, str, str], "frozenset[Unit]"]
"""``units(table, row, metric)`` -> the (seed, draw) units our results hold for that row's
``metric``."""


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



def interval_verdict(iv: Interval, op: str, tie_band: float) -> str:
    """The paired rule (module docstring) on the interval of mean(d); ``tie_band`` = m |mean(b)|."""
    lo, hi = (iv.lo, iv.hi) if op in ("<", "<~") else (-iv.hi, -iv.lo)  # mirror > and >~
    if op in ("<~", ">~"):
        return REPRODUCED if hi <= 0 else NOT_REPRODUCED if lo > 0 else INCONCLUSIVE
    if hi < 0:
        return REPRODUCED
    if lo > 0:
        return NOT_REPRODUCED
    return TIE if -tie_band <= lo and hi <= tie_band else INCONCLUSIVE


def _unit_order(u: Unit) -> tuple[int, int, int, int]:
    s, d = u
    return (s is not None, s or 0, d is not None, d or 0)


def common_units(unit_sets: list[frozenset[Unit]]) -> list[Unit]:
    """The units a claim is judged on, from the units of each cell it reads (module docstring).

    ``(seed, draw)`` pairs present in every cell, where a shared cell's ``(None, draw)`` stands
    for every seed's ``draw``; where the cells share no draw, ``(seed, None)`` for each seed
    common to them (each cell then gives that seed's mean over its draws). Empty if a cell has
    no units.
    """
    if not unit_sets or not all(unit_sets):
        return []
    seeded = [u for u in unit_sets if any(s is not None for s, _ in u)]
    shared = [{d for _, d in u} for u in unit_sets if all(s is None for s, _ in u)]
    if seeded:
        common = set.intersection(*map(set, seeded))
        if shared:
            common = {(s, d) for s, d in common if d in set.intersection(*shared)}
        seeds = set.intersection(*({s for s, _ in u} for u in seeded))
    else:
        common = {(None, d) for d in set.intersection(*shared)}
        seeds = {None}
    return sorted(common or {(s, None) for s in seeds}, key=_unit_order)


def _at(get: UnitGetter, unit: Unit) -> Getter:
    def one(table: str, row: str, nfe: int, metric: str) -> float | None:
        return get(table, row, nfe, metric, unit)
    return one


def difference_label(claim: Claim) -> str:
    """What ``d`` is, in brief words: ``+BI - +GAN @NFE 1``, ``a - 1.05 x b`` (the boundary
    of ``<~``), ``a - 1.3`` (a constant)."""
    lhs, rhs = claim.lhs, claim.rhs
    factor = {"<~": 1 + claim.margin, ">~": 1 - claim.margin}.get(claim.op, 1.0)
    f = "" if factor == 1 else f"{factor:g} x "
    if isinstance(rhs, Quantity) and lhs.scale == rhs.scale == 1 \
            and lhs.nfe_text() == rhs.nfe_text():
        return f"{lhs.rows_text()} - {f}{rhs.rows_text()} {lhs.nfe_text()}"
    return f"{describe_side(lhs, brief=True)} - {f}{describe_side(rhs, brief=True)}"


def judge(claim: Claim, get: Getter,
          per_unit: tuple[UnitGetter, UnitsOf] | None = None) -> dict[str, Any]:
    """Evaluate one claim: both sides, the verdict, what was missing, and the paired interval.

    ``get`` gives one number per cell (the paper's); ``per_unit``, if given, gives our numbers
    per unit and the units of each row, and the claim is judged on their common units (module
    docstring). The sides returned are the means over the units.
    """
    units: list[Unit] = []
    n_any = 0  # seeds of the best-replicated cell, to say when a claim uses fewer
    if per_unit is not None:
        get_unit, units_of = per_unit
        sets = [units_of(t, r, q.metric) for q in (claim.lhs, claim.rhs)
                if isinstance(q, Quantity) for t, r in q.cells()]
        units = common_units(sets)
        n_any = max((len({s for s, _ in u}) for u in sets), default=0)
    seeds = sorted({s for s, _ in units if s is not None})
    draws = sorted({d for _, d in units if d is not None})
    out = {"key": claim.key, "lhs": None, "rhs": None, "missing": [], "units": units,
           "seeds": seeds, "n_seeds": len({s for s, _ in units}), "n_draws": len(draws),
           "n_any": n_any, "over": "none", "d_mean": math.nan, "d_se": math.nan,
           "d_lo": math.nan, "d_hi": math.nan, "tie_band": math.nan}
    sides: dict[Unit, tuple[float, float]] = {}
    missing: list[str] = []
    for u in units or [None]:
        g = get if u is None else _at(get_unit, u)
        lv, ml = quantity_value(claim.lhs, g)
        rv, mr = quantity_value(claim.rhs, g)
        where = "" if u is None or len(units) < 2 else f" ({_unit_words(u)})"
        missing += [f"{x}{where}" for x in ml + mr]
        if lv is not None and rv is not None:
            sides[u] = (lv, rv)
    if missing or not sides:
        return out | {"missing": list(dict.fromkeys(missing)), "verdict": INCONCLUSIVE}
    lhs = sum(a for a, _ in sides.values()) / len(sides)
    rhs = sum(b for _, b in sides.values()) / len(sides)
    d = {(u or (None, None)): decisive_difference(a, claim.op, b, claim.margin)
         for u, (a, b) in sides.items()}
    out |= {"lhs": lhs, "rhs": rhs}
    try:
        iv = paired_interval(d)
    except ValueError:  # every difference infinite (a ratio over 0): nothing to decide on
        return out | {"verdict": INCONCLUSIVE}
    out |= {"over": iv.over, "d_mean": iv.mean, "d_se": iv.se, "d_lo": iv.lo, "d_hi": iv.hi}
    if iv.over == "none":  # one unit: the margin rule
        return out | {"verdict": verdict(lhs, claim.op, rhs, claim.margin)}
    band = claim.margin * abs(rhs)
    return out | {"verdict": interval_verdict(iv, claim.op, band), "tie_band": band}


def _unit_words(u: Unit) -> str:
    s, d = u
    return ", ".join(x for x in (f"seed {s}" if s is not None else "",
                                 f"draw {d}" if d is not None else "") if x)
