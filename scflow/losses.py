"""The distillation losses of SCFlow, one short function per equation (docs/METHOD.md §2).

Shapes: latents (B, C, H, W), times (B,). ``f_*`` are one-step data estimates of Eq. 5,
``f(z, t) = z - t v(z, t)`` (see :func:`scflow.flow.f_theta`).

- :func:`distance`: the distance d of Eq. 4/8/10 -- squared L2 (paper) or Pseudo-Huber (code).
- :func:`late_mask`: the truncation test of Eq. 8 (paper ``t <= t_trunc``, code ``t_s < t_trunc``).
- :func:`cd_loss`: L_CD, Eq. 4/6/8 (targets replaced by z0 on late examples).
- :func:`reflow_input` / :func:`rf_loss`: L_RF, Eq. 9 (MSE, with its stop-gradients).
- :func:`bi_loss`: L_BI, Eq. 10 (no truncation).

The GAN losses (Eq. 7) live beside the discriminator in :mod:`scflow.discriminator`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from scflow.flow import interpolant

DISTANCES = ("l2", "pseudo_huber")
TRUNC_RULES = ("t", "t_s")


def pseudo_huber(diff: Tensor, c: float) -> Tensor:
    """Element-wise Pseudo-Huber ``sqrt(diff^2 + c^2) - c`` (authors' code, c = 0.01)."""
    return torch.sqrt(diff.pow(2) + c * c) - c


def distance(a: Tensor, b: Tensor, kind: str = "l2", c: float = 0.01) -> Tensor:
    """The distance d of Eq. 4/8/10 between two batches of latents, a scalar.

    ``"l2"``: squared L2, mean over all elements (paper). ``"pseudo_huber"``:
    ``sqrt((a-b)^2 + c^2) - c``, mean over C, H, W, then over the batch (code).
    """
    diff = a - b
    if kind == "l2":
        return diff.pow(2).mean()
    if kind == "pseudo_huber":
        return pseudo_huber(diff, c).flatten(1).mean(1).mean()
    raise ValueError(f"distance must be one of {DISTANCES} (got {kind!r})")


def late_mask(t: Tensor, t_s: Tensor, t_trunc: float, rule: str) -> Tensor:
    """Which examples are "late" (near the data) for the truncation of Eq. 8, shape (B,) bool.

    ``rule="t"`` (paper): ``t <= t_trunc``; ``rule="t_s"`` (code): ``t_s < t_trunc``.
    Late examples regress onto the data latent z0 instead of the target net's estimate.
    """
    if rule == "t":
        return t <= t_trunc
    if rule == "t_s":
        return t_s < t_trunc
    raise ValueError(f"truncation rule must be one of {TRUNC_RULES} (got {rule!r})")


def cd_target(y_s: Tensor, z0: Tensor, late: Tensor) -> Tensor:
    """Eq. 8's target: ``z0`` where ``late`` else ``y_s = f_target(z_s, t_s)`` (no gradient)."""
    return torch.where(late.reshape(-1, *([1] * (z0.ndim - 1))), z0, y_s).detach()


def cd_loss(f_student: Tensor, y_s: Tensor, z0: Tensor, late: Tensor,
            kind: str = "l2", c: float = 0.01) -> Tensor:
    """L_CD, truncated consistency distillation (Eq. 4, 6, 8).

    ``d(f_theta(z_t, t), y)`` with ``y = z0`` on late examples and ``y = sg(y_s)`` otherwise.
    """
    return distance(f_student, cd_target(y_s, z0, late), kind, c)


def reflow_input(x1: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Eq. 9's input: ``z_hat = (1 - t) sg(x1) + t z1`` with ``x1 = f_theta(z1, 1)``."""
    return interpolant(x1.detach(), z1, t)


def rf_loss(x1: Tensor, f_hat: Tensor) -> Tensor:
    """L_RF, reflow / self-correction (Eq. 9): ``|| sg(x1) - f_theta(z_hat, t) ||^2`` (MSE).

    The gradient flows only through ``f_hat`` (the second student call), never through x1.
    """
    return (x1.detach() - f_hat).pow(2).mean()


def bi_loss(f_student: Tensor, y_k: Tensor, kind: str = "l2", c: float = 0.01) -> Tensor:
    """L_BI, bidirectional consistency (Eq. 10): ``d(f_theta(z_t, t), sg(f_target(z_k, t_k)))``.

    No truncation; ``f_student`` is the same student output as in L_CD.
    """
    return distance(f_student, y_k.detach(), kind, c)
