"""Two properties the paper only shows as pictures, measured as numbers.

- Consistency (Fig. 1, 5, 6): the same noise z1 should give the same image at every NFE; we
  measure the distance between the NFE = 1 sample and the NFE = k sample.
- Oversaturation (Fig. 4, 6): consistency distillation alone pushes the late "z0" estimates to
  high contrast; we compare pixel spread, clipping and colour saturation with real images.
All images are (N, C, H, W) floats in [-1, 1] units (generated ones BEFORE clipping).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from scflow.metrics.features import FeatureExtractor

CLIP_THRESHOLD = 0.98  # a pixel with |x| >= this counts as clipped / saturated
GREY_SATURATION = 1e-3  # mean HSV saturation at or below this: the real images are grey


def consistency(x_ref: Tensor, x_k: Tensor,
                extractor: FeatureExtractor | None = None) -> dict[str, float]:
    """Distance between samples from the same noise at NFE = 1 (``x_ref``) and NFE = k.

    ``consistency_rmse``: root of the mean squared pixel difference over all images and pixels
    ([-1, 1] units; 0 = identical). ``consistency_feat`` (only with an ``extractor``): mean over
    images of the L2 distance between their features.
    """
    if x_ref.shape != x_k.shape:
        raise ValueError(f"paired samples must have the same shape: {x_ref.shape} vs {x_k.shape}")
    diff = x_ref.double() - x_k.double()
    out = {"consistency_rmse": float(diff.pow(2).mean().sqrt())}
    if extractor is not None:
        fa, fb = extractor(x_ref), extractor(x_k)
        out["consistency_feat"] = float(np.linalg.norm(fa - fb, axis=1).mean())
    return out


def clip_fraction(images: Tensor, threshold: float = CLIP_THRESHOLD) -> float:
    """Fraction of pixel values with ``|x| >= threshold`` (at or beyond the [-1, 1] limits)."""
    return float((images.abs() >= threshold).double().mean())


def hsv_saturation(images: Tensor) -> Tensor:
    """HSV saturation (max - min) / max per pixel of RGB images in [-1, 1] (clipped), (N, H, W)."""
    rgb = ((images.double().clamp(-1, 1) + 1) / 2)
    hi, lo = rgb.amax(dim=1), rgb.amin(dim=1)
    return torch.where(hi > 0, (hi - lo) / hi.clamp_min(1e-12), torch.zeros_like(hi))


def saturation_stats(fake: Tensor, real: Tensor) -> dict[str, float]:
    """Contrast / saturation of generated images relative to real ones.

    ``std_ratio``: pixel std of ``fake`` / pixel std of ``real`` (1 = like the data, > 1 =
    over-contrasted); ``clip_fraction`` and ``clip_fraction_real``: see :func:`clip_fraction`;
    ``colour_saturation_ratio`` (3-channel images with colour only): mean HSV saturation
    fake / real; left out when the real images are grey (their saturation is 0).
    """
    if fake.shape[1] != real.shape[1]:
        raise ValueError(f"channel counts differ: {fake.shape[1]} vs {real.shape[1]}")
    out = {
        "std_ratio": float(fake.double().std() / real.double().std()),
        "clip_fraction": clip_fraction(fake),
        "clip_fraction_real": clip_fraction(real),
    }
    if fake.shape[1] == 3:
        real_sat = hsv_saturation(real).mean()
        # grey data (R = G = B, e.g. greyscale photos read as RGB) has no colour to compare
        # with: the ratio is undefined there, so it is left out rather than reported as inf
        if real_sat > GREY_SATURATION:
            out["colour_saturation_ratio"] = float(hsv_saturation(fake).mean() / real_sat)
    return out
