"""Paired intervals over training seeds and evaluation draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scflow.repro.paired import paired_interval, t_quantile


def test_t_quantiles():
    assert t_quantile(2) == pytest.approx(4.303, abs=1e-3)
    assert t_quantile(4) == pytest.approx(2.776, abs=1e-3)
    assert t_quantile(10_000) == pytest.approx(1.960, abs=1e-3)


def test_interval_over_seeds_uses_per_seed_means():
    # seed means 1, 2, 3 whatever the spread inside a seed: the interval is over seeds
    diffs = {(0, 0): 0.5, (0, 1): 1.5, (1, 0): 2.0, (1, 1): 2.0, (2, 0): 2.0, (2, 1): 4.0}
    iv = paired_interval(diffs)
    assert iv.over == "seeds" and iv.n_seeds == 3 and iv.n_draws == 2
    assert iv.mean == pytest.approx(2.0)
    assert iv.se == pytest.approx(1.0 / math.sqrt(3))
    assert iv.lo == pytest.approx(2.0 - 4.303 / math.sqrt(3), abs=1e-3)


def test_one_seed_falls_back_to_draws():
    iv = paired_interval({(0, k): v for k, v in enumerate([1.0, 2.0, 3.0, 4.0, 5.0])})
    assert iv.over == "draws" and iv.n_seeds == 1 and iv.n_draws == 5
    assert iv.mean == pytest.approx(3.0)
    assert iv.se == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1) / math.sqrt(5))


def test_single_unit_has_no_interval():
    iv = paired_interval({(0, None): 1.5})
    assert iv.over == "none" and iv.mean == 1.5 and math.isnan(iv.lo)


def test_pairing_removes_shared_noise():
    # both rows carry the same draw noise: the paired interval is far tighter than either row's
    rng = np.random.default_rng(0)
    noise = {(s, k): rng.normal(0, 3.0) for s in range(3) for k in range(5)}
    a = {u: 10 + n for u, n in noise.items()}
    b = {u: 9 + n + rng.normal(0, 0.2) for u, n in noise.items()}
    iv = paired_interval({u: a[u] - b[u] for u in a})
    assert iv.lo > 0.5 and iv.hi < 1.5


def test_no_values_is_an_error():
    with pytest.raises(ValueError, match="no paired differences"):
        paired_interval({(0, 0): float("nan")})
