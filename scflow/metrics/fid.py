"""Frechet Inception Distance (Heusel et al. 2017) on the features of any backend.

FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) between Gaussians fitted to two
feature sets. The distance is computed here (:func:`frechet_distance`) with clean-fid's
conventions, step for step, because clean-fid 0.1.35 (its last release) calls
``scipy.linalg.sqrtm(..., disp=False)``, an argument scipy 1.18 removed; clean-fid still
provides the Inception features. The paper reports FID of generated samples against the
training set's statistics; those reference statistics are computed once per (backend, dataset)
and cached.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
from torch import Tensor

from scflow.cache import cached
from scflow.metrics.features import FeatureExtractor

Stats = tuple[np.ndarray, np.ndarray]


def feature_stats(feats: np.ndarray | Tensor) -> Stats:
    """Mean (D,) and covariance (D, D), float64, of features (N, D) (N >= 2)."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need features of shape (N >= 2, D), got {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """Principal square root of ``a`` by ``scipy.linalg.sqrtm`` on every scipy version.

    No ``disp`` argument (removed in scipy 1.18; before, it only chose between a printed warning
    and a returned error estimate, never changed the root). scipy warns (``LinAlgWarning``) or
    prints when the matrix is singular; that is the normal case here (a covariance of N < D
    features is rank-deficient) and the caller checks what matters, a finite root and a
    negligible imaginary part, so the warning is silenced instead of flooding every evaluation.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        out = scipy.linalg.sqrtm(a)
    return np.asarray(out[0] if isinstance(out, tuple) else out)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, FID).

    ||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2)), computed as
    clean-fid's ``frechet_distance`` does so values agree to the last bit on the same scipy:
    the square root of the product; if it is not finite (singular product), again with ``eps``
    added to both diagonals; an imaginary part of the root from rounding is dropped when its
    diagonal is below 1e-3, a larger one raises ``ValueError``.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"means must be vectors of one length, got {mu1.shape} and {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f"covariances must be ({mu1.shape[0]}, {mu1.shape[0]}), got "
                         f"{sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        warnings.warn(f"FID: singular covariance product; adding {eps} to the diagonals",
                      RuntimeWarning, stacklevel=2)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag))} in the "
                             "square root of the covariance product")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_stats(stats1: Stats, stats2: Stats) -> float:
    """FID between two (mu, sigma) pairs (:func:`frechet_distance`)."""
    (mu1, s1), (mu2, s2) = stats1, stats2
    return frechet_distance(mu1, s1, mu2, s2)


def fid_from_features(f1: np.ndarray | Tensor, f2: np.ndarray | Tensor) -> float:
    """FID between two feature sets (N1, D) and (N2, D)."""
    return fid_from_stats(feature_stats(f1), feature_stats(f2))


def reference_stats(extractor: FeatureExtractor, dataset: dict[str, Any],
                    load_images: Callable[[], Tensor]) -> Stats:
    """Feature statistics of a reference set, cached under (extractor.config, ``dataset``).

    ``dataset`` must describe the images fully (name, resolution, limit, ...): it is the cache
    key, and ``load_images`` is only called on a miss.
    """
    key = {"extractor": extractor.config, "dataset": dataset}

    def build(out_dir):
        mu, sigma = feature_stats(extractor(load_images()))
        np.savez(out_dir / "stats.npz", mu=mu, sigma=sigma)

    path, _ = cached("fid_ref_stats", key, build)
    with np.load(path / "stats.npz") as z:
        return z["mu"], z["sigma"]


def digits_reference_stats(extractor: FeatureExtractor, resolution: int = 32) -> Stats:
    """Cached statistics of all 1,797 scikit-learn digits at ``resolution`` (the training set)."""
    from scflow.data import load_digits_images

    return reference_stats(extractor, {"name": "digits", "resolution": resolution},
                           lambda: load_digits_images(resolution).images)


def compute_fid(images: Tensor, reference: Stats | Tensor, extractor: FeatureExtractor) -> float:
    """FID of generated ``images`` (N, C, H, W) in [-1, 1] against ``reference``.

    ``reference`` is either precomputed ``(mu, sigma)`` (e.g. :func:`digits_reference_stats`)
    or a tensor of real images.
    """
    ref = feature_stats(extractor(reference)) if isinstance(reference, Tensor) else reference
    return fid_from_stats(feature_stats(extractor(images)), ref)
