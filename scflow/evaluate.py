"""Evaluate a velocity net at several NFE on a bank of fixed noise sets (paired comparisons).

The evaluation bank (:func:`bank_noise`) is K noise sets of n samples each, drawn from their own
seeds, independent of the training seed: every student, every training seed and the teacher are
sampled from the same K sets, so two rows differ only by their nets and their difference can be
judged draw by draw (docs/METHOD.md, "Measuring the miniature").

For each NFE: Euler-sample latents (:func:`scflow.samplers.sample_batched`), decode them, and
record FID / precision / recall / saturation against the real training images, plus the
consistency of the NFE-k sample with the NFE-1 sample of the same noise (the paper's
"consistent one-step and few-step" claim, shown only as pictures in the paper).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from scflow.autoencoder import LatentCodec
from scflow.flow import VelocityFn
from scflow.samplers import sample_batched


def evaluate_nfe(net: VelocityFn, codec: LatentCodec, z1: Tensor, nfe_list: list[int],
                 real: Tensor, extractor: Any, *, method: str, results: Any | None = None,
                 cond: Tensor | None = None, ref_stats: Any = None,
                 batch_size: int = 250, sampler: str = "euler", real_feats: Any = None
                 ) -> tuple[dict[int, Tensor], list[dict[str, Any]]]:
    """Sample ``net`` at every NFE from ``z1`` and score the decoded images against ``real``.

    Args:
        net: any velocity function ``v = net(z, t, cond)`` (teacher, student's eval EMA, ...).
        codec: decodes latents to images in [-1, 1] (not clipped: saturation is measured).
        z1: the fixed evaluation noise, shape (n, C, h, w).
        real: real images in [-1, 1], the FID reference.
        extractor: a :mod:`scflow.metrics` feature extractor.
        results: a :class:`scflow.repro.results.ResultsWriter`; rows are added to it when given.
        ref_stats: precomputed reference statistics of ``real`` (saves recomputing them).
        sampler: a name of :data:`scflow.samplers.SAMPLERS` (``nfe`` counts its evaluations).
        real_feats: the extractor's features of ``real`` (computed here when not given).

    Returns:
        ``(images, rows)``: decoded images per NFE and the metric rows as plain dicts.
    """
    from scflow.metrics import consistency, evaluate_samples

    images: dict[int, Tensor] = {}
    rows: list[dict[str, Any]] = []
    if real_feats is None:
        real_feats = extractor(real)
    dev = next(iter(net.parameters())).device if hasattr(net, "parameters") else z1.device
    for nfe in nfe_list:
        lat = sample_batched(net, z1.to(dev), nfe, None if cond is None else cond.to(dev),
                             batch_size=batch_size, sampler=sampler)
        x = codec.decode(lat.float())
        images[nfe] = x
        metrics = evaluate_samples(x, real, extractor, ref_stats=ref_stats, real_feats=real_feats)
        ref_nfe = min(nfe_list)
        if nfe != ref_nfe:
            metrics.update(consistency(images[ref_nfe], x, extractor))
        for name, value in metrics.items():
            rows.append(dict(metric=name, value=float(value), method=method, nfe=nfe,
                             n_samples=int(z1.shape[0])))
    if results is not None:
        for r in rows:
            results.add(r["metric"], r["value"], method=r["method"], nfe=r["nfe"],
                        n_samples=r["n_samples"])
    return images, rows


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
                                 batch_size=batch_size, sampler=sampler,
                                 real_feats=real_feats)
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
