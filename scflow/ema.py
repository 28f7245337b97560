"""Exponential moving averages of network weights (the ``target`` and ``eval_ema`` nets).

Algorithm 1, last line: ``theta~ <- sg(mu * theta~ + (1 - mu) * theta)`` after every optimizer
step. The same update with its own decay keeps the evaluation EMA of the authors' code.
Teachers trained from scratch use :func:`warmup_decay` (diffusers' ``EMAModel`` schedule), so
that their EMA does not keep a share of the random initialisation.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def frozen_copy(net: nn.Module) -> nn.Module:
    """A deep copy of ``net`` with gradients switched off (the start of an EMA net)."""
    ema = copy.deepcopy(net)
    ema.requires_grad_(False)
    return ema


def warmup_decay(step: int, decay: float) -> float:
    """EMA decay at update ``step`` (counted from 1): ``min(decay, (1 + step) / (10 + step))``.

    diffusers' ``EMAModel`` default schedule. Why: with a constant decay the EMA keeps
    ``decay ** steps`` of its starting weights -- 0.999 ** 1000 = 37% of a random init after
    1,000 updates, 5% after 3,000. With the warm-up that share vanishes within a few updates.
    """
    if step < 1:
        raise ValueError(f"step counts from 1 (got {step})")
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def ema_update_(ema: nn.Module, source: nn.Module, decay: float) -> None:
    """In place: ``ema <- decay * ema + (1 - decay) * source`` for every parameter.

    Buffers (if any) are copied from ``source``. ``decay = 0`` makes ``ema`` a copy of
    ``source``; ``decay`` must lie in [0, 1).
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"EMA decay must be in [0, 1) (got {decay})")
    e_params = list(ema.parameters())
    s_params = list(source.parameters())
    if len(e_params) != len(s_params):
        raise ValueError("EMA and source networks have different parameter lists")
    if e_params:
        # lerp(a, b, w) = a + w (b - a) = decay * a + (1 - decay) * b with w = 1 - decay
        torch._foreach_lerp_(e_params, [p.detach() for p in s_params], 1.0 - decay)
    for e_buf, s_buf in zip(ema.buffers(), source.buffers(), strict=True):
        e_buf.copy_(s_buf)
