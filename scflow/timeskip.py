"""Training times: how ``t`` is drawn, and Algorithm 2 (time-skip generation).

Conventions (docs/METHOD.md §1-2): t = 1 is noise, t = 0 is data. For each example,

- ``t`` is drawn either on the paper's N-point grid (Algorithm 1: ``i ~ U[1, N]``, ``t = i / N``)
  or continuously (authors' code: ``t ~ U[0, 1)``), one draw per example shared by all terms;
- Algorithm 2 then gives the two neighbouring times
  ``r_s = min(t, t_skip)``, ``r_k = min(1 - t, t_skip)``, ``d_s = U r_s``, ``d_k = U' r_k``,
  ``t_s = t - d_s`` (used by L_CD) and ``t_k = t + d_k`` (used by L_BI), so that
  ``0 <= t_s <= t <= t_k <= 1`` and ``|d| <= t_skip`` always hold.

The uniforms ``U, U'`` are passed in (not drawn here) so that the trainer can draw every random
number of a step from one generator (exact resume, identical draws on every process).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

TIME_SAMPLINGS = ("continuous", "grid")


def sample_times(
    n: int,
    mode: str,
    grid_points: int = 1000,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw ``n`` training times in [0, 1].

    Args:
        n: number of examples.
        mode: ``"grid"`` (paper, Algorithm 1: ``i ~ U{1..N}``, ``t = i / N``, so t is in (0, 1])
            or ``"continuous"`` (code: ``t ~ U[0, 1)``).
        grid_points: N of the grid (ignored for ``"continuous"``).
        generator: optional ``torch.Generator`` (on CPU) for reproducible draws.
        device: where to put the result.

    Returns:
        Tensor of shape (n,), float32.
    """
    if mode == "grid":
        if grid_points < 1:
            raise ValueError(f"grid_points must be >= 1 (got {grid_points})")
        i = torch.randint(1, grid_points + 1, (n,), generator=generator)
        t = i.float() / grid_points
    elif mode == "continuous":
        t = torch.rand(n, generator=generator)
    else:
        raise ValueError(f"time sampling must be one of {TIME_SAMPLINGS} (got {mode!r})")
    return t.to(device) if device is not None else t


@dataclass
class TimeSkip:
    """Output of Algorithm 2 for a batch: the skips and the two neighbouring times."""

    t: Tensor
    d_s: Tensor  # backward skip (towards data), used by L_CD
    d_k: Tensor  # forward skip (towards noise), used by L_BI
    t_s: Tensor  # t - d_s
    t_k: Tensor  # t + d_k


def time_skip(t: Tensor, t_skip: float, u_s: Tensor, u_k: Tensor) -> TimeSkip:
    """Algorithm 2 (time-skip generation).

    Args:
        t: current times, shape (B,), in [0, 1].
        t_skip: the time-skip threshold in [0, 1] (default 0.1 in the paper).
        u_s: ``U ~ U[0, 1)``, shape (B,).
        u_k: ``U' ~ U[0, 1)``, independent of ``u_s``, shape (B,).

    Returns:
        :class:`TimeSkip` with ``t_s = t - U min(t, t_skip)`` and
        ``t_k = t + U' min(1 - t, t_skip)``.
    """
    if not 0.0 <= t_skip <= 1.0:
        raise ValueError(f"t_skip must be in [0, 1] (got {t_skip})")
    r_s = torch.clamp(t, 0.0, t_skip)  # Alg. 2: r_s <- clip(t, 0, t_skip)
    r_k = torch.clamp(1.0 - t, 0.0, t_skip)  # Alg. 2: r_k <- clip(1 - t, 0, t_skip)
    d_s = u_s.to(t) * r_s  # Alg. 2: delta_s <- rand(0, 1) * r_s
    d_k = u_k.to(t) * r_k  # Alg. 2: delta_k <- rand(0, 1) * r_k
    t_s = (t - d_s).clamp_min(0.0)  # Alg. 2: t_{i-s} <- t - delta_s (clamp: float round-off)
    t_k = (t + d_k).clamp_max(1.0)  # Alg. 2: t_{i+k} <- t + delta_k
    return TimeSkip(t=t, d_s=d_s, d_k=d_k, t_s=t_s, t_k=t_k)
