"""Evaluate a velocity net at several NFE on a bank of fixed noise sets (paired comparisons).

The evaluation bank (:func:`bank_noise`) is K noise sets of n samples each, drawn from their own
seeds, independent of the training seed: every student, every training seed and the teacher are
sampled from the same K sets, so two rows differ only by their nets and their difference can be
judged draw by draw (docs/METHOD.md, "Measuring the miniature"); :func:`evaluate_bank`.

For each NFE: Euler-sample latents (:func:`sample_nfe`), decode them, and score the images
(:func:`score_nfe`): FID / precision / recall / saturation against the real training images,
plus the consistency of the NFE-k sample with the NFE-1 sample of the same noise (the paper's
"consistent one-step and few-step" claim, shown only as pictures in the paper).
:func:`evaluate_nfe` does all three. Scores come back as plain rows; writing them is the
caller's business.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from scflow.autoencoder import LatentCodec
from scflow.flow import VelocityFn
from scflow.samplers import sample_batched


def sample_nfe(net: VelocityFn, z1: Tensor, nfe_list: list[int], cond: Tensor | None = None,
               batch_size: int = 250, sampler: str = "euler") -> dict[int, Tensor]:
    """Samples of ``net`` from the same noise ``z1`` at every NFE: latents per NFE.

    ``net`` is any velocity function ``v = net(z, t, cond)`` (teacher, a student's eval EMA,
    ...); the noise goes to the net's device. ``sampler``: a name of
    :data:`scflow.samplers.SAMPLERS` (Euler, the paper's; ``nfe`` counts network evaluations).
    """
    dev = next(iter(net.parameters())).device if hasattr(net, "parameters") else z1.device
    c = None if cond is None else cond.to(dev)
    return {nfe: sample_batched(net, z1.to(dev), nfe, c, batch_size=batch_size,
                                sampler=sampler).float()
            for nfe in nfe_list}


def score_nfe(images: dict[int, Tensor], real: Tensor, extractor: Any, *, method: str,
              ref_stats: Any = None, real_feats: Any = None) -> list[dict[str, Any]]:
    """Metric rows of the decoded samples per NFE against the real images ``real``.

    Every NFE gets FID, precision / recall and the saturation statistics
    (:func:`scflow.metrics.evaluate_samples`); every NFE but the smallest also the consistency
    with the smallest NFE's samples of the same noise. Rows: ``metric, value, method, nfe,
    n_samples``. ``real_feats``: the extractor's features of ``real`` (computed here, once,
    when not given).
    """
    from scflow.metrics import consistency, evaluate_samples

    if real_feats is None:
        real_feats = extractor(real)
    rows: list[dict[str, Any]] = []
    ref_nfe = min(images)
    for nfe, x in images.items():
        metrics = evaluate_samples(x, real, extractor, ref_stats=ref_stats,
                                   real_feats=real_feats)
        if nfe != ref_nfe:
            metrics.update(consistency(images[ref_nfe], x, extractor))
        rows += [dict(metric=name, value=float(value), method=method, nfe=nfe,
                      n_samples=int(x.shape[0])) for name, value in metrics.items()]
    return rows


def evaluate_nfe(net: VelocityFn, codec: LatentCodec, z1: Tensor, nfe_list: list[int],
                 real: Tensor, extractor: Any, *, method: str, cond: Tensor | None = None,
                 ref_stats: Any = None, batch_size: int = 250, sampler: str = "euler",
                 real_feats: Any = None) -> tuple[dict[int, Tensor], list[dict[str, Any]]]:
    """Sample ``net`` at every NFE from ``z1``, decode, and score the images against ``real``.

    Args:
        net: any velocity function ``v = net(z, t, cond)`` (teacher, student's eval EMA, ...).
        codec: decodes latents to images in [-1, 1] (not clipped: saturation is measured).
        z1: the fixed evaluation noise, shape (n, C, h, w).
        real: real images in [-1, 1], the FID reference.
        extractor: a :mod:`scflow.metrics` feature extractor.
        ref_stats: precomputed reference statistics of ``real`` (saves recomputing them).
        sampler: a name of :data:`scflow.samplers.SAMPLERS`.
        real_feats: precomputed features of ``real``.

    Returns:
        ``(images, rows)``: decoded images per NFE and the metric rows as plain dicts
        (:func:`score_nfe`).
    """
    latents = sample_nfe(net, z1, nfe_list, cond, batch_size, sampler)
    images = {nfe: codec.decode(lat) for nfe, lat in latents.items()}
    return images, score_nfe(images, real, extractor, method=method, ref_stats=ref_stats,
                             real_feats=real_feats)


EVAL_BANK_SEED = 10_000
"""Draw ``k`` of the bank is ``randn`` from a generator seeded ``EVAL_BANK_SEED + k``."""


def bank_noise(draw: int, n: int, shape: tuple[int, ...]) -> Tensor:
    """Noise set ``draw`` of the evaluation bank: ``n`` samples of ``shape``, independent of any
    training seed and of the other draws."""
    if draw < 0:
        raise ValueError(f"draw must be >= 0 (got {draw})")
    import torch

    g = torch.Generator().manual_seed(EVAL_BANK_SEED + draw)
    return torch.randn((n, *shape), generator=g)


def evaluate_bank(net: VelocityFn, codec: LatentCodec, shape: tuple[int, ...], n: int,
                  draws: int, nfe_list: list[int], real: Tensor, extractor: Any, *, method: str,
                  cond: Tensor | None = None, ref_stats: Any = None, batch_size: int = 250,
                  sampler: str = "euler") -> tuple[dict[int, Tensor], list[dict[str, Any]]]:
    """:func:`evaluate_nfe` on each of the bank's first ``draws`` noise sets.

    Every row carries its ``draw``; the images returned are those of draw 0 (figures).
    ``cond`` (one condition per sample) is the same for every draw.
    """
    from scflow.metrics.fid import feature_stats

    real_feats = extractor(real)  # once for every draw and NFE
    if ref_stats is None:
        ref_stats = feature_stats(real_feats)
    first: dict[int, Tensor] = {}
    rows: list[dict[str, Any]] = []
    for k in range(draws):
        images, r = evaluate_nfe(net, codec, bank_noise(k, n, shape), nfe_list, real, extractor,
                                 method=method, cond=cond, ref_stats=ref_stats,
                                 batch_size=batch_size, sampler=sampler, real_feats=real_feats)
        rows += [{**row, "draw": k} for row in r]
        if k == 0:
            first = images
    return first, rows


def rows_table(rows: list[dict[str, Any]], metrics: tuple[str, ...] = ("fid", "precision", "recall",
               "std_ratio", "consistency_rmse")) -> Any:
    """A pandas table (method x nfe rows, metric columns) for display in notebooks."""
    import pandas as pd

    df = pd.DataFrame(rows)
    df = df[df.metric.isin(metrics)]
    return df.pivot_table(index=["method", "nfe"], columns="metric", values="value").round(4)
