"""The adversarial term L_GAN (Eq. 7): a latent discriminator and its non-saturating losses.

Interface: any discriminator is a callable ``D(latents, t, cond) -> scores`` of shape (B,)
(:class:`Discriminator`). The latent one here ignores ``t`` and ``cond`` (CelebA code: clean
latents, no time input); a text-to-image UNet-encoder discriminator (UFOGen-style, noising the
latents to the student's time and conditioning on text) can be dropped in behind the same call.

Losses (docs/METHOD.md §2.4):
- D minimises ``softplus(-D(z0)) + softplus(D(sg(x1))) + (gamma/2) ||grad_z0 D(z0)||^2``
  (R1 on the real latents);
- the student adds ``lambda_GAN * softplus(-D(x1))`` with ``x1 = f_theta(z1, 1)`` (with gradient).

Head: ``"logit"`` (sound; the score is a logit) or ``"sigmoid_softplus"`` (the authors' T2I
quirk: the score is a sigmoid probability, the same softplus losses are applied to it, which
bounds them). The head is part of the discriminator, so the losses do not change.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scflow.fidelity import D_HEADS


class Discriminator(Protocol):
    """What the trainer needs from a discriminator: scores of shape (B,)."""

    def __call__(self, z: Tensor, t: Tensor | None = None, cond: object | None = None) -> Tensor:
        ...


class LatentDiscriminator(nn.Module):
    """A few strided convolutions on latents, global average pooling and a linear head.

    Args:
        channels: latent channels (4 for SD-VAE latents).
        width: channels of the first convolution (doubled once).
        head: ``"logit"`` or ``"sigmoid_softplus"`` (see module docstring).
    """

    def __init__(self, channels: int = 4, width: int = 64, head: str = "logit") -> None:
        super().__init__()
        if head not in D_HEADS:
            raise ValueError(f"discriminator head must be one of {D_HEADS} (got {head!r})")
        self.head = head
        act = nn.LeakyReLU(0.2)
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), act,
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), act,
            nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1), act,
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), act,
        )
        self.out = nn.Linear(2 * width, 1)

    def forward(self, z: Tensor, t: Tensor | None = None, cond: object | None = None) -> Tensor:
        """Scores (B,); ``t`` and ``cond`` are accepted for the interface and ignored."""
        s = self.out(self.body(z).mean(dim=(2, 3))).squeeze(1)
        return torch.sigmoid(s) if self.head == "sigmoid_softplus" else s


def generator_loss(disc: Discriminator, fake: Tensor, t: Tensor | None = None,
                   cond: object | None = None) -> Tensor:
    """Eq. 7, student side (non-saturating): ``softplus(-D(x1))``, mean over the batch.

    ``fake`` keeps its gradient; callers freeze D's parameters so only the student learns.
    """
    return F.softplus(-disc(fake, t, cond)).mean()


def discriminator_loss(disc: Discriminator, real: Tensor, fake: Tensor, gamma: float = 1.0,
                       t: Tensor | None = None, cond: object | None = None
                       ) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 7, discriminator side, with R1 on the real latents.

    ``softplus(-D(z0)) + softplus(D(sg(x1))) + (gamma/2) E||grad_z0 D(z0)||^2``. Real and fake go
    through D in ONE forward pass (D has no batch statistics, so this is exact).

    Returns:
        ``(total, {"d_real": ..., "d_fake": ..., "r1": ...})`` (all scalars; total has grad).
    """
    n = real.shape[0]
    real = real.detach().requires_grad_(gamma > 0)
    both_t = None if t is None else torch.cat([t, t])
    both_c = None if cond is None else torch.cat([cond, cond])  # type: ignore[list-item]
    scores = disc(torch.cat([real, fake.detach()]), both_t, both_c)
    s_real, s_fake = scores[:n], scores[n:]
    d_real = F.softplus(-s_real).mean()
    d_fake = F.softplus(s_fake).mean()
    if gamma > 0:
        (grad,) = torch.autograd.grad(s_real.sum(), real, create_graph=True)
        r1 = grad.pow(2).flatten(1).sum(1).mean()
    else:
        r1 = torch.zeros((), device=real.device)
    total = d_real + d_fake + 0.5 * gamma * r1
    return total, {"d_real": d_real.detach(), "d_fake": d_fake.detach(), "r1": r1.detach()}
