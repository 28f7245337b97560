"""Deterministic Euler sampling on the uniform grid (NFE = number of steps).

``z <- z - (1/N) v(z, t_i)`` for ``t_i = 1, (N-1)/N, ..., 1/N``; NFE 1 is exactly
``f(z1, 1) = z1 - v(z1, 1)`` (Eq. 5). No fresh noise is injected, so one noise tensor gives one
sample per NFE and comparisons across NFE and methods are paired.

The paper uses one sampler, Euler: :func:`euler_sample` and its chunked form
:func:`sample_batched` take the same leading arguments ``(net, z1, nfe, cond=None)``; a sampler
added with that signature can replace them at every call site.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from scflow.flow import VelocityFn, denoise


@dataclass
class Trajectory:
    """What :func:`euler_sample` returns when asked for the whole path.

    ``times[i]`` is the time of ``states[i]``; ``z0_estimates[i] = f(states[i], times[i])``
    is the "z0 sequence" of Fig. 7 (one per step, so ``len(z0_estimates) == nfe``).
    """

    times: list[float]
    states: list[Tensor]
    z0_estimates: list[Tensor]

    @property
    def sample(self) -> Tensor:
        return self.states[-1]


def time_grid(nfe: int) -> list[float]:
    """Uniform grid from 1 (noise) down to 0 (data): ``[1, (N-1)/N, ..., 0]`` (N + 1 points)."""
    if nfe < 1:
        raise ValueError(f"nfe must be >= 1 (got {nfe})")
    return [1.0 - i / nfe for i in range(nfe + 1)]


@torch.inference_mode()
def euler_sample(
    net: VelocityFn,
    z1: Tensor,
    nfe: int,
    cond: object | None = None,
    return_trajectory: bool = False,
) -> Tensor | Trajectory:
    """Euler integration of ``dz/dt = v(z, t, cond)`` from t = 1 to t = 0 in ``nfe`` steps."""
    grid = time_grid(nfe)
    z = z1
    states, z0s = [z1], []
    for t_cur, t_next in zip(grid[:-1], grid[1:], strict=True):
        t = torch.full((z.shape[0],), t_cur, dtype=z.dtype, device=z.device)
        v = net(z, t, cond)
        if return_trajectory:
            z0s.append(denoise(z, t, v))
        z = z - (t_cur - t_next) * v
        if return_trajectory:
            states.append(z)
    if return_trajectory:
        return Trajectory(times=grid, states=states, z0_estimates=z0s)
    return z


def sample_batched(
    net: VelocityFn,
    z1: Tensor,
    nfe: int,
    cond: object | None = None,
    batch_size: int = 256,
) -> Tensor:
    """:func:`euler_sample` over a large fixed noise set in chunks (never one huge tensor)."""
    outs = []
    for i in range(0, z1.shape[0], batch_size):
        c = None if cond is None else cond[i : i + batch_size]
        outs.append(euler_sample(net, z1[i : i + batch_size], nfe, c))
    return torch.cat(outs)
