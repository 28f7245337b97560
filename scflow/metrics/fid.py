"""Frechet Inception Distance (Heusel et al. 2017) on the features of any backend.

FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) between Gaussians fitted to two
feature sets; the distance itself is clean-fid's ``frechet_distance`` (not reimplemented).
The paper reports FID of generated samples against the training set's statistics; those
reference statistics are computed once per (backend, dataset) and cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
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


def fid_from_stats(stats1: Stats, stats2: Stats) -> float:
    """FID between two (mu, sigma) pairs, via ``cleanfid.fid.frechet_distance``."""
    from cleanfid.fid import frechet_distance

    (mu1, s1), (mu2, s2) = stats1, stats2
    return float(frechet_distance(mu1, s1, mu2, s2))


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
