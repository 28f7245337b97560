"""Sample-quality metrics: FID, improved precision/recall, consistency and oversaturation.

Metric names are fixed strings, shared by every CSV the project writes (``results.py`` reads
:data:`METRIC_DOCS`). Submodules import torch / clean-fid lazily through this package's
attributes, so ``from scflow.metrics import METRIC_DOCS`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

FID = "fid"
PRECISION = "precision"
RECALL = "recall"
CONSISTENCY_RMSE = "consistency_rmse"
CONSISTENCY_FEAT = "consistency_feat"
STD_RATIO = "std_ratio"
CLIP_FRACTION = "clip_fraction"
CLIP_FRACTION_REAL = "clip_fraction_real"
COLOUR_SATURATION_RATIO = "colour_saturation_ratio"

METRIC_DOCS: dict[str, str] = {
    FID: "Frechet distance between feature Gaussians of samples and training set (lower is better)",
    PRECISION: "improved precision, k=3: share of samples inside the real feature manifold (fidelity)",
    RECALL: "improved recall, k=3: share of real images inside the sample feature manifold (diversity)",
    CONSISTENCY_RMSE: "pixel RMSE ([-1,1] units) between NFE=1 and NFE=k samples of the same noise",
    CONSISTENCY_FEAT: "mean L2 feature distance between NFE=1 and NFE=k samples of the same noise",
    STD_RATIO: "pixel std of samples / pixel std of real images (1 = data-like, >1 = over-contrast)",
    CLIP_FRACTION: "share of sample pixels with |x| >= 0.98 before clipping (saturated)",
    CLIP_FRACTION_REAL: "share of real-image pixels with |x| >= 0.98 (reference for clip_fraction)",
    COLOUR_SATURATION_RATIO: "mean HSV saturation of samples / of real images (RGB only)",
}

_LAZY = {
    "FeatureExtractor": "features", "DigitsFeatures": "features",
    "InceptionFeatures": "features", "WeightsUnavailableError": "features",
    "get_feature_extractor": "features", "feature_stats": "fid", "fid_from_features": "fid",
    "fid_from_stats": "fid", "compute_fid": "fid", "reference_stats": "fid",
    "digits_reference_stats": "fid", "precision_recall": "prdc", "consistency": "image_stats",
    "saturation_stats": "image_stats",
}

__all__ = ["METRIC_DOCS", "evaluate_samples", *_LAZY]

if TYPE_CHECKING:
    from torch import Tensor

    from scflow.metrics.features import FeatureExtractor


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"scflow.metrics.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'scflow.metrics' has no attribute {name!r}")


def evaluate_samples(fake: Tensor, real: Tensor, extractor: FeatureExtractor,
                     ref_stats: tuple | None = None, k: int = 3,
                     real_feats: Any = None) -> dict[str, float]:
    """All distribution metrics of generated ``fake`` vs ``real`` images, both in [-1, 1].

    FID uses ``ref_stats`` (e.g. the cached training-set statistics) when given, else the
    features of ``real``; precision/recall always compare with ``real`` (``real_feats``: its
    features, when the caller already has them: a reference of 10,000 images is worth
    extracting once per evaluation, not once per NFE). Returns the keys
    fid, precision, recall, std_ratio, clip_fraction, clip_fraction_real and, for RGB,
    colour_saturation_ratio.
    """
    from scflow.metrics.fid import feature_stats, fid_from_stats
    from scflow.metrics.image_stats import saturation_stats
    from scflow.metrics.prdc import precision_recall

    f_fake = extractor(fake)
    f_real = extractor(real) if real_feats is None else real_feats
    ref = ref_stats if ref_stats is not None else feature_stats(f_real)
    out = {FID: fid_from_stats(feature_stats(f_fake), ref)}
    out.update(precision_recall(f_real, f_fake, k=k))
    out.update(saturation_stats(fake, real))
    return out
