"""Schedules of the distillation that are pure functions of the update index.

Like Algorithm 1's warm-up gates (:func:`scflow.distill.loss_weights`), each value at update
``it`` (counted from 1) is computed from ``it`` alone, so a resumed run continues on the same
curve without any scheduler state, and every schedule can be tested point by point.

- :func:`lr_factor`: the learning rate of update ``it`` as a fraction of the configured one.
  ``constant`` is the authors' code (and every run before schedules existed); ``cosine`` and
  ``linear`` decay to 0 at the last update, so that a longer run does not keep moving at the
  full rate at its end (a student trained at a constant rate can drift: on scikit-learn's 8×8
  digits its FID at NFE 2-16 got worse with more updates, docs/METHOD.md §7.7).
- :func:`eval_ema_decay_at`: the evaluation EMA's decay, optionally with the warm-up
  ``min(decay, (1 + it) / (10 + it))`` that the teachers use (:func:`scflow.ema.warmup_decay`),
  which lets a slow EMA (e.g. 0.999) average the recent students instead of keeping a share of
  the starting weights.
"""

from __future__ import annotations

import math

from scflow.ema import warmup_decay

LR_SCHEDULES = ("constant", "cosine", "linear")


def lr_factor(it: int, total: int, kind: str = "constant") -> float:
    """Learning-rate multiplier of update ``it`` of ``total`` (both counted from 1).

    ``constant``: 1. ``cosine``: ``(1 + cos(pi (it - 1) / total)) / 2``, 1 at the first update,
    decaying to ``(1 + cos(pi (total - 1) / total)) / 2`` (about 0) at the last.
    ``linear``: ``1 - (it - 1) / total``.
    """
    if kind not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {kind!r}; choose one of {LR_SCHEDULES}")
    if kind == "constant":
        return 1.0
    if total < 1 or not 1 <= it <= total:
        raise ValueError(f"lr_schedule {kind!r} needs 1 <= it <= total (got it={it}, "
                         f"total={total})")
    frac = (it - 1) / total
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    return 1.0 - frac


def eval_ema_decay_at(it: int, decay: float, warmup: bool) -> float:
    """Decay of the evaluation EMA at update ``it``: ``decay``, or its warm-up form."""
    return warmup_decay(it, decay) if warmup else decay
