"""Paired differences over the evaluation bank and the training seeds, with their interval.

Every run is scored on the same noise sets of the evaluation bank (column ``draw``), and the
rows of a table share their training seeds, so a comparison of two rows is made unit by unit:
``d[s, k] = a[s, k] - b[s, k]`` for training seed ``s`` and draw ``k``. The noise of one draw
moves both rows together and cancels in ``d``; what is left is the difference of the nets.

Two sources of noise remain, and the interval accounts for both:

- *training*: the same configuration trained with another seed (or another summation order) is
  another student; draws do not average that away;
- *evaluation*: what is left of the draw's noise in ``d``.

Hence the interval is computed over **seeds** when there are at least two: the mean over draws
of each seed's differences, ``D_s``, is one observation per seed, and the 95% interval is
``mean(D) +- t(0.975, S - 1) sd(D) / sqrt(S)`` (Student's t: with 3 seeds the factor is 4.30,
not 1.96). With one seed only the draws vary, the interval is over draws
(``t(0.975, K - 1)``) and says nothing about training noise: it is marked ``draws``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A paired mean difference with its standard error and two-sided interval."""

    mean: float
    se: float
    lo: float
    hi: float
    n_seeds: int
    n_draws: int
    over: str  # "seeds", "draws" or "none" (a single unit: no interval)

    @property
    def width(self) -> float:
        return self.hi - self.lo


def t_quantile(df: int, level: float = LEVEL) -> float:
    """Two-sided Student-t quantile ``t((1 + level) / 2, df)``."""
    from scipy.stats import t

    return float(t.ppf((1 + level) / 2, df))


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else math.nan
    return m, sd


def paired_interval(diffs: Mapping[tuple[int, int | None], float],
                    level: float = LEVEL) -> Interval:
    """The interval of the mean of ``diffs``, keyed by ``(seed, draw)`` (see the module text).

    A ``draw`` of None is a quantity without draws (a single number per seed).
    """
    vals = {k: v for k, v in diffs.items() if v is not None and math.isfinite(v)}
    if not vals:
        raise ValueError("no paired differences to summarise")
    seeds = sorted({s for s, _ in vals})
    draws = sorted({k for _, k in vals if k is not None})
    per_seed = [_mean_sd([v for (s, _), v in vals.items() if s == seed])[0] for seed in seeds]
    if len(seeds) >= 2:
        m, sd = _mean_sd(per_seed)
        se, df, over = sd / math.sqrt(len(seeds)), len(seeds) - 1, "seeds"
    elif len(vals) >= 2:
        m, sd = _mean_sd(list(vals.values()))
        se, df, over = sd / math.sqrt(len(vals)), len(vals) - 1, "draws"
    else:
        m = per_seed[0]
        return Interval(m, math.nan, math.nan, math.nan, 1, len(draws), "none")
    half = t_quantile(df, level) * se
    return Interval(m, se, m - half, m + half, len(seeds), len(draws), over)
