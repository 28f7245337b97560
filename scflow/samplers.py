"""Deterministic Euler sampling on the uniform grid (NFE = number of steps).

``z <- z - (1/N) v(z, t_i)`` for ``t_i = 1, (N-1)/N, ..., 1/N``; NFE 1 is exactly
``f(z1, 1) = z1 - v(z1, 1)`` (Eq. 5). No fresh noise is injected, so one noise tensor gives one
sample per NFE and comparisons across NFE and methods are paired.

The paper samples the students with Euler. Its teacher numbers come from an adaptive solver
(LFM: dopri5), so the teacher's *converged* quality needs more than Euler at 25 steps:
:func:`heun_sample` is the second-order Heun method (Karras et al. 2022, EDM, Algorithm 1 without
noise; k-diffusion's ``sample_heun``). Every sampler takes the same leading arguments
``(net, z1, nfe, cond=None)`` with ``nfe`` counting network evaluations, so
:func:`sample_batched` and every call site can swap them (:data:`SAMPLERS`).
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


@torch.inference_mode()
def heun_sample(net: VelocityFn, z1: Tensor, nfe: int, cond: object | None = None) -> Tensor:
    """Heun's second-order method from t = 1 to t = 0 with ``nfe // 2`` uniform steps.

    Per step ``t_i -> t_{i+1}`` (``h = t_i - t_{i+1}``)::

        d  = v(z, t_i);  z' = z - h d                  (Euler predictor)
        d' = v(z', t_{i+1});  z <- z - h (d + d') / 2  (trapezoidal corrector)

    Two network evaluations per step, the last one included (a velocity net is defined at
    t = 0, unlike EDM's denoiser, so no final Euler step is needed): ``nfe`` must be even.
    Local error O(h^3), global O(h^2), against Euler's O(h).
    """
    if nfe < 2 or nfe % 2:
        raise ValueError(f"heun_sample: nfe must be an even number >= 2 (two evaluations per "
                         f"step); got {nfe}")
    grid = time_grid(nfe // 2)
    z = z1
    for t_cur, t_next in zip(grid[:-1], grid[1:], strict=True):
        h = t_cur - t_next
        d = net(z, torch.full((z.shape[0],), t_cur, dtype=z.dtype, device=z.device), cond)
        z_pred = z - h * d
        d2 = net(z_pred, torch.full((z.shape[0],), t_next, dtype=z.dtype, device=z.device), cond)
        z = z - h * 0.5 * (d + d2)
    return z


SAMPLERS = {"euler": euler_sample, "heun": heun_sample}
"""Every sampler by name; each takes ``(net, z1, nfe, cond=None)``."""


def sample_batched(
    net: VelocityFn,
    z1: Tensor,
    nfe: int,
    cond: object | None = None,
    batch_size: int = 256,
    sampler: str = "euler",
) -> Tensor:
    """A sampler of :data:`SAMPLERS` over a large fixed noise set in chunks (never one huge tensor)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
    fn = SAMPLERS[sampler]
    outs = []
    for i in range(0, z1.shape[0], batch_size):
        c = None if cond is None else cond[i : i + batch_size]
        outs.append(fn(net, z1[i : i + batch_size], nfe, c))
    return torch.cat(outs)
