"""FID floors of real images on synthetic features with known statistics."""

from __future__ import annotations

import numpy as np
import pytest

from scflow.metrics.floors import memoriser_fid, novel_fid, reconstruction_fid


def gaussian_feats(n: int, d: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


def test_floors_are_small_positive_and_shrink_with_n():
    feats = gaussian_feats(4000)
    small, large = memoriser_fid(feats, 100, 4), memoriser_fid(feats, 2000, 4)
    assert all(v > 0 for v in small + large)
    assert np.mean(large) < np.mean(small) / 5  # the finite-n bias falls like d / n
    nov = novel_fid(feats, 100, 4)
    assert all(v > 0 for v in nov)


def test_novel_is_above_memoriser_and_draws_differ():
    feats = gaussian_feats(3000, seed=1)
    mem, nov = memoriser_fid(feats, 500, 6), novel_fid(feats, 500, 6)
    assert np.mean(nov) > np.mean(mem)  # disjoint samples carry no share of the reference
    assert len(set(np.round(mem, 12))) == 6  # each draw is its own subset
    assert memoriser_fid(feats, 500, 6) == mem  # seeded: the same floors every time


def test_a_shifted_sampler_scores_above_the_floors():
    from scflow.metrics.fid import feature_stats, fid_from_stats

    feats = gaussian_feats(3000, seed=2)
    fake = gaussian_feats(500, seed=3) + 0.5  # mean shifted by 0.5 in every dimension
    fid = fid_from_stats(feature_stats(fake), feature_stats(feats))
    assert fid > 4 * 0.25 * 0.8  # |shift|^2 = 4 dims x 0.25, minus noise
    assert fid > max(novel_fid(feats, 500, 4))


@pytest.mark.parametrize("n", [1, 3000])
def test_bad_n_is_refused(n):
    with pytest.raises(ValueError, match="2 <= n < N"):
        memoriser_fid(gaussian_feats(3000), n, 1)


def test_reconstruction_floor_pairs_with_the_memoriser():
    feats = gaussian_feats(3000, seed=4)
    assert reconstruction_fid(feats, feats, 500, 3) == memoriser_fid(feats, 500, 3)  # exact
    blurred = 0.5 * feats  # a codec that loses half of every feature
    assert min(reconstruction_fid(feats, blurred, 500, 3)) > max(memoriser_fid(feats, 500, 3))
    with pytest.raises(ValueError, match="one reconstruction per reference image"):
        reconstruction_fid(feats, feats[:10], 5, 1)
