"""Latent flow matching: the paper's conventions in four small functions.

Conventions (paper Sec. "Preliminaries", docs/METHOD.md §1): **t = 1 is noise, t = 0 is data**,
``z_t = (1 - t) z0 + t z1`` and the velocity points from data to noise, ``v* = z1 - z0``.
Every velocity network in this package is called as ``net(z, t, cond=None)`` with ``t`` in
[0, 1] (see :mod:`scflow.nets`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

VelocityFn = Callable[..., Tensor]
"""Anything called as ``v = fn(z, t, cond)``: a velocity net, a CFG wrapper, a closed form."""


def _bcast(t: Tensor | float, like: Tensor) -> Tensor:
    """Time as a tensor broadcastable against ``like`` (shape (B,) -> (B, 1, 1, 1))."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def interpolant(z0: Tensor, z1: Tensor, t: Tensor | float) -> Tensor:
    """Straight path between data and noise: ``z_t = (1 - t) z0 + t z1``."""
    tb = _bcast(t, z0)
    return (1 - tb) * z0 + tb * z1


def velocity_target(z0: Tensor, z1: Tensor) -> Tensor:
    """Flow-matching regression target ``z1 - z0`` (Eq. 1), constant along the path."""
    return z1 - z0


def flow_matching_loss(
    net: VelocityFn, z0: Tensor, z1: Tensor, t: Tensor, cond: object | None = None
) -> Tensor:
    """Eq. 1 (Eq. 2 with ``cond``): ``E || (z1 - z0) - v(z_t, t, c) ||^2``, mean over elements."""
    zt = interpolant(z0, z1, t)
    return (net(zt, t, cond) - velocity_target(z0, z1)).pow(2).mean()


def denoise(z: Tensor, t: Tensor | float, v: Tensor) -> Tensor:
    """Eq. 5: one-step estimate of the data, ``f(z_t, t) = z_t - t * v(z_t, t)``.

    ``f(z, 0) = z`` exactly (no c_skip / c_out scalings as in EDM-style consistency models).
    """
    return z - _bcast(t, z) * v


def f_theta(net: VelocityFn, z: Tensor, t: Tensor, cond: object | None = None) -> Tensor:
    """Eq. 5 applied to a network: ``f(z, t) = z - t * net(z, t, cond)``."""
    return denoise(z, t, net(z, t, cond))


def cfg_combine(v_cond: Tensor, v_uncond: Tensor, scale: float) -> Tensor:
    """Eq. 3, classifier-free guidance: ``g * v(z, c) + (1 - g) * v(z, null)``."""
    return scale * v_cond + (1 - scale) * v_uncond


def guided(net: VelocityFn, null_cond: object, scale: float) -> VelocityFn:
    """Wrap ``net`` with classifier-free guidance (Eq. 3) behind the same call signature.

    Both branches are evaluated in ONE batched forward pass (conditional and null stacked);
    ``scale = 1`` returns the plain conditional net.
    """
    if not scale >= 1.0:  # also rejects NaN
        raise ValueError(f"guidance scale must be >= 1 (got {scale})")
    if scale == 1.0:
        return net

    def v_cfg(z: Tensor, t: Tensor, cond: object | None = None) -> Tensor:
        if cond is None:
            raise ValueError("classifier-free guidance needs a condition")
        n = z.shape[0]
        both = _stack_cond(cond, null_cond, n)
        v = net(torch.cat([z, z]), torch.cat([t.expand(n), t.expand(n)]), both)
        return cfg_combine(v[:n], v[n:], scale)

    return v_cfg


def _stack_cond(cond: object, null_cond: object, n: int) -> object:
    """Concatenate a batch of conditions with the null condition broadcast to the same shape.

    Works for class labels (``cond`` (B,), null a scalar index) and text embeddings
    (``cond`` (B, L, D), null (L, D)).
    """
    if not isinstance(cond, Tensor) or cond.shape[0] != n:
        raise TypeError("condition must be a tensor with one row per example")
    null = torch.as_tensor(null_cond).to(cond).expand_as(cond)
    return torch.cat([cond, null])
