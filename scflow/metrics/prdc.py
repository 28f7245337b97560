"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019), k = 3.

The manifold of a feature set is the union of balls around its points, each ball's radius the
distance to that point's k-th nearest neighbour within the set (itself excluded).
- precision: fraction of generated features inside the real manifold (fidelity);
- recall: fraction of real features inside the generated manifold (diversity).
Distances are computed with ``torch.cdist`` in row chunks, so 50k x 50k never sits in memory.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _as_tensor(x: np.ndarray | Tensor, device: str | torch.device) -> Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    return t.to(device=device, dtype=torch.float64)


def knn_radii(feats: Tensor, k: int = 3, chunk: int = 1024) -> Tensor:
    """Distance of every row of ``feats`` (N, D) to its k-th nearest other row, (N,)."""
    if feats.shape[0] <= k:
        raise ValueError(f"need more than k={k} points, got {feats.shape[0]}")
    radii = []
    for i in range(0, feats.shape[0], chunk):
        d = torch.cdist(feats[i:i + chunk], feats)
        # the k+1 smallest include the point itself (distance 0): the last is the k-th neighbour
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def coverage_fraction(queries: Tensor, centres: Tensor, radii: Tensor, chunk: int = 1024) -> float:
    """Fraction of ``queries`` within ``radii[j]`` of some ``centres[j]`` (boundary included)."""
    inside = 0
    for i in range(0, queries.shape[0], chunk):
        d = torch.cdist(queries[i:i + chunk], centres)
        inside += int((d <= radii[None, :]).any(dim=1).sum())
    return inside / queries.shape[0]


def precision_recall(real_feats: np.ndarray | Tensor, fake_feats: np.ndarray | Tensor,
                     k: int = 3, chunk: int = 1024,
                     device: str | torch.device = "cpu") -> dict[str, float]:
    """Improved precision and recall of ``fake_feats`` w.r.t. ``real_feats`` (both (N, D)).

    Returns ``{"precision": ..., "recall": ...}``, each in [0, 1]. Computed in float64.
    """
    real, fake = _as_tensor(real_feats, device), _as_tensor(fake_feats, device)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature shapes differ or are not 2-D: {real.shape} vs {fake.shape}")
    precision = coverage_fraction(fake, real, knn_radii(real, k, chunk), chunk)
    recall = coverage_fraction(real, fake, knn_radii(fake, k, chunk), chunk)
    return {"precision": precision, "recall": recall}
