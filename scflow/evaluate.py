"""Evaluate a velocity net at several NFE from ONE fixed noise set (paired comparisons).

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
                 batch_size: int = 250) -> tuple[dict[int, Tensor], list[dict[str, Any]]]:
    """Sample ``net`` at every NFE from ``z1`` and score the decoded images against ``real``.

    Args:
        net: any velocity function ``v = net(z, t, cond)`` (teacher, student's eval EMA, ...).
        codec: decodes latents to images in [-1, 1] (not clipped: saturation is measured).
        z1: the fixed evaluation noise, shape (n, C, h, w).
        real: real images in [-1, 1], the FID reference.
        extractor: a :mod:`scflow.metrics` feature extractor.
        results: a :class:`scflow.repro.results.ResultsWriter`; rows are added to it when given.
        ref_stats: precomputed reference statistics of ``real`` (saves recomputing them).

    Returns:
        ``(images, rows)``: decoded images per NFE and the metric rows as plain dicts.
    """
    from scflow.metrics import consistency, evaluate_samples

    images: dict[int, Tensor] = {}
    rows: list[dict[str, Any]] = []
    dev = next(iter(net.parameters())).device if hasattr(net, "parameters") else z1.device
    for nfe in nfe_list:
        lat = sample_batched(net, z1.to(dev), nfe, None if cond is None else cond.to(dev),
                             batch_size=batch_size)
        x = codec.decode(lat.float())
        images[nfe] = x
        metrics = evaluate_samples(x, real, extractor, ref_stats=ref_stats)
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


def rows_table(rows: list[dict[str, Any]], metrics: tuple[str, ...] = ("fid", "precision", "recall",
               "std_ratio", "consistency_rmse")) -> Any:
    """A pandas table (method x nfe rows, metric columns) for display in notebooks."""
    import pandas as pd

    df = pd.DataFrame(rows)
    df = df[df.metric.isin(metrics)]
    return df.pivot_table(index=["method", "nfe"], columns="metric", values="value").round(4)
