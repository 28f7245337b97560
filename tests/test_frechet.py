"""The Frechet distance of FID (scflow.metrics.fid.frechet_distance) on every scipy version."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import scipy.linalg

from scflow.metrics.fid import fid_from_stats, frechet_distance


def _random_stats(rng: np.random.Generator, d: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    f = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _closed_form_diag(mu1, v1, mu2, v2) -> float:
    # commuting (diagonal) covariances: Tr((S1 S2)^(1/2)) = sum sqrt(v1 v2)
    return float(np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2)))


def test_closed_form_diagonal_covariances():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    v1, v2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(_closed_form_diag(mu1, v1, mu2, v2), rel=1e-10)


def test_closed_form_commuting_covariances():
    # S1 = Q diag(a) Q^T and S2 = Q diag(b) Q^T commute: the distance is the diagonal one
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a, b = rng.uniform(0.2, 2, size=5), rng.uniform(0.2, 2, size=5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(_closed_form_diag(mu1, a, mu2, b), rel=1e-8)
    # a Gaussian is at distance 0 from itself; the distance is symmetric
    s = q @ np.diag(a) @ q.T
    assert abs(frechet_distance(mu1, s, mu1, s)) < 1e-8
    assert frechet_distance(mu1, s, mu2, q @ np.diag(b) @ q.T) == pytest.approx(
        frechet_distance(mu2, q @ np.diag(b) @ q.T, mu1, s), rel=1e-8)


def _cleanfid_runs() -> bool:
    return "disp" in inspect.signature(scipy.linalg.sqrtm).parameters


@pytest.mark.skipif(not _cleanfid_runs(), reason="clean-fid's frechet_distance passes disp=, "
                    "which this scipy no longer accepts")
@pytest.mark.parametrize("d,n", [(8, 200), (16, 10)])  # full rank; singular (N < D)
def test_identical_to_cleanfid(d, n):
    from cleanfid.fid import frechet_distance as cleanfid_frechet

    rng = np.random.default_rng(d + n)
    s1, s2 = _random_stats(rng, d, n), _random_stats(rng, d, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clean-fid's deprecated disp=, singular products
        ref = float(cleanfid_frechet(s1[0], s1[1], s2[0], s2[1]))
    assert fid_from_stats(s1, s2) == ref  # bit-identical: committed FIDs stay valid


def test_scipy_without_disp_argument(monkeypatch):
    """scipy >= 1.18: sqrtm(A) has no ``disp`` and returns the root alone."""
    real = scipy.linalg.sqrtm
    calls = []

    def sqrtm_118(A):  # noqa: N803 (scipy's name)
        calls.append(A.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(real(A))

    monkeypatch.setattr(scipy.linalg, "sqrtm", sqrtm_118)
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    v1, v2 = rng.uniform(0.5, 2, size=4), rng.uniform(0.5, 2, size=4)
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert calls, "the patched sqrtm was not used"
    assert got == pytest.approx(_closed_form_diag(mu1, v1, mu2, v2), rel=1e-10)


def test_singular_product_falls_back_to_eps_offset(monkeypatch):
    """A non-finite root (singular product) is recomputed with eps on the diagonals."""
    real = scipy.linalg.sqrtm
    seen = []

    def sqrtm_nan_first(A):  # noqa: N803
        seen.append(A.copy())
        return np.full_like(A, np.nan) if len(seen) == 1 else real(A)

    monkeypatch.setattr(scipy.linalg, "sqrtm", sqrtm_nan_first)
    s = np.diag([1.0, 0.0, 2.0])
    with pytest.warns(RuntimeWarning, match="singular"):
        got = frechet_distance(np.zeros(3), s, np.zeros(3), s, eps=1e-6)
    np.testing.assert_allclose(seen[1], (s + 1e-6 * np.eye(3)) @ (s + 1e-6 * np.eye(3)))
    assert abs(got) < 1e-5


def test_singular_covariances_warn_nothing_and_stay_exact():
    # scipy warns "Matrix is singular" on this product; the root is exact all the same
    v1, v2 = np.array([1.0, 0.0, 2.0]), np.array([3.0, 0.0, 0.5])
    mu1, mu2 = np.zeros(3), np.ones(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
        got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(_closed_form_diag(mu1, v1, mu2, v2), rel=1e-10)


def test_large_imaginary_part_raises(monkeypatch):
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda A: np.eye(len(A)) * (1 + 1j))
    with pytest.raises(ValueError, match="imaginary component"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="means"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
