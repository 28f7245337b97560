"""Text-conditional teacher (Eq. 2 with caption embeddings, dropout for CFG) and one reflow round.

The paper's T2I teacher is 2-Rectified Flow (InstaFlow): a flow model from SD 1.5 (1-RF), then
ONE reflow round: sample pairs ``(z1, z0_hat)`` with the 1-RF model (with CFG) and train on the
straight lines between them, ``z_t = (1 - t) z0_hat + t z1`` (Eq. 1 on those couplings),
starting from the 1-RF weights. The miniature does exactly that on digit latents.

Caption dropout: with probability ``cond_drop`` an example's caption embedding is replaced by
the empty prompt's, which trains the null branch of classifier-free guidance (Eq. 3).
The training loop is :func:`scflow.teacher.fit_flow`, shared with the unconditional teacher.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from scflow.flow import VelocityFn, guided
from scflow.nets import VelocityNet, build_velocity_net
from scflow.samplers import sample_batched
from scflow.teacher import fit_flow
from scflow.text import check_text_width


def train_text_flow(net: VelocityNet, z0: Tensor, cond: Tensor, null: Tensor, *, steps: int,
                    batch_size: int, lr: float, ema_decay: float, cond_drop: float = 0.1,
                    z1: Tensor | None = None, seed: int = 0, device: str = "cpu",
                    desc: str = "teacher", progress: bool = False
                    ) -> tuple[VelocityNet, list[float]]:
    """Train ``net`` (in place) with Eq. 2, ``t ~ U[0, 1]``; return its EMA and the loss curve.

    Args:
        net: a text-conditional velocity net (``UNet2DConditionModel`` inside); for reflow, a
            copy of the 1-RF model.
        z0: data latents (N, C, H, W) -- or, for reflow, the generated ``z0_hat``.
        cond: caption embeddings (N, L, D), row i describes ``z0[i]``.
        null: the empty-prompt embedding (L, D) (CFG null condition).
        z1: None = fresh Gaussian noise each step (flow matching); else the paired noise
            (N, C, H, W) of reflow: example i always uses ``z1[i]``.
    """
    if z0.shape[0] != cond.shape[0] or (z1 is not None and z1.shape != z0.shape):
        raise ValueError(f"mismatched sizes: z0 {tuple(z0.shape)}, cond {tuple(cond.shape)}, "
                         f"z1 {None if z1 is None else tuple(z1.shape)}")
    check_text_width(cond.shape[-1], net)
    torch.manual_seed(seed)
    return fit_flow(net, z0, steps=steps, batch_size=batch_size, lr=lr, ema_decay=ema_decay,
                    cond=cond, null=null, cond_drop=cond_drop, z1=z1,
                    generator=torch.Generator().manual_seed(seed), device=device, desc=desc,
                    progress=progress)


def build_text_teacher(arch: str, text_width: int, sample_size: int, channels: int = 4,
                       seed: int = 0) -> VelocityNet:
    """A text-conditional net of a named config, initialised from ``seed`` (the same weights in
    every process: torch seeds its default generator differently per process); refuses a
    mismatched text width."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_velocity_net(arch, sample_size=sample_size, channels=channels)
    check_text_width(text_width, net)
    return net


@torch.no_grad()
def reflow_pairs(teacher: VelocityFn, cond: Tensor, null: Tensor, shape: tuple[int, ...], *,
                 nfe: int, guidance: float, seed: int, batch_size: int = 256,
                 device: str = "cpu") -> tuple[Tensor, Tensor]:
    """Stage 1 of reflow: ``z0_hat = Euler_nfe(teacher with CFG, z1, caption)`` for fresh z1.

    Returns ``(z1, z0_hat)`` on the CPU, one pair per row of ``cond``.
    """
    g = torch.Generator().manual_seed(20_000 + seed)
    z1 = torch.randn((cond.shape[0], *shape), generator=g)
    v = guided(teacher, null.to(device), guidance)  # Eq. 3
    z0_hat = sample_batched(v, z1.to(device), nfe, cond.to(device), batch_size)
    return z1, z0_hat.float().cpu()


def reflow(teacher: VelocityNet, cond: Tensor, null: Tensor, shape: tuple[int, ...], *,
           pair_nfe: int, guidance: float, steps: int, batch_size: int, lr: float,
           ema_decay: float, cond_drop: float = 0.1, seed: int = 0, device: str = "cpu",
           progress: bool = False) -> tuple[VelocityNet, list[float], tuple[Tensor, Tensor]]:
    """One reflow round: pairs from ``teacher`` (1-RF) -> a 2-RF model initialised from it.

    Returns ``(two_rf, losses, (z1, z0_hat))``; ``teacher`` is not modified.
    """
    pairs = reflow_pairs(teacher, cond, null, shape, nfe=pair_nfe, guidance=guidance,
                         seed=seed, device=device)
    student = copy.deepcopy(teacher)
    two_rf, losses = train_text_flow(student, pairs[1], cond, null, steps=steps,
                                     batch_size=batch_size, lr=lr, ema_decay=ema_decay,
                                     cond_drop=cond_drop, z1=pairs[0], seed=seed + 1,
                                     device=device, desc="reflow", progress=progress)
    return two_rf, losses, pairs
