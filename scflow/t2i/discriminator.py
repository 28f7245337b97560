"""The text-to-image discriminator of L_GAN (Eq. 7): the teacher UNet's encoder plus a small head.

As in the authors' T2I code (UFOGen-style): the discriminator is initialised from the
teacher's ``conv_in``, time embedding, down blocks and mid block (a diffusers
``UNet2DConditionModel``), and a small convolutional head maps the mid-block features to a map
of scores that is averaged to one score per example. Its input latents are first **noised to
the student's time** ``t`` of the update, ``z_t = (1 - t) z + t n`` with fresh ``n ~ N(0, I)``
(the interpolant of Sec. 1), and it is **conditioned on time** (the UNet's timestep embedding of
``t * time_scale``) **and on text** (cross-attention to the caption embeddings).

Head: ``"logit"`` (default, sound) or ``"sigmoid_softplus"`` (the code's quirk: a sigmoid
probability to which the same softplus losses are applied, which bounds them) -- as in
:class:`scflow.discriminator.LatentDiscriminator`, behind the same call ``D(z, t, cond)``.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from scflow.fidelity import D_HEADS
from scflow.flow import interpolant


class UNetEncoderDiscriminator(nn.Module):
    """``D(z, t, cond) -> (B,)`` scores from a copy of a text UNet's encoder (down + mid).

    Args:
        teacher: a :class:`~scflow.nets.VelocityNet` around a ``UNet2DConditionModel`` (or the
            UNet itself); its weights are COPIED, the teacher is never modified.
        head: ``"logit"`` or ``"sigmoid_softplus"``.
        time_scale: the UNet's timestep is ``t * time_scale`` (default: the wrapper's, 1000).
        noise_input: noise the input to time ``t`` (the T2I recipe); False feeds ``z`` as is.
    """

    def __init__(self, teacher: nn.Module, head: str = "logit", time_scale: float | None = None,
                 noise_input: bool = True) -> None:
        super().__init__()
        if head not in D_HEADS:
            raise ValueError(f"discriminator head must be one of {D_HEADS} (got {head!r})")
        unet = getattr(teacher, "model", teacher)
        if type(unet).__name__ != "UNet2DConditionModel":
            raise TypeError(f"needs a UNet2DConditionModel, got {type(unet).__name__}")
        self.head_kind, self.noise_input = head, noise_input
        self.time_scale = float(time_scale if time_scale is not None
                                else getattr(teacher, "time_scale", 1000.0))
        # the encoder half of the teacher, copied (Algorithm 1 initialises D from the teacher)
        self.conv_in = copy.deepcopy(unet.conv_in)
        self.time_proj = copy.deepcopy(unet.time_proj)
        self.time_embedding = copy.deepcopy(unet.time_embedding)
        self.down_blocks = copy.deepcopy(unet.down_blocks)
        self.mid_block = copy.deepcopy(unet.mid_block)
        ch = unet.config.block_out_channels[-1]
        groups = min(32, ch)
        while ch % groups:
            groups //= 2
        self.head = nn.Sequential(  # small conv head, new weights
            nn.GroupNorm(groups, ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1), nn.SiLU(),
            nn.Conv2d(ch, 1, 1))
        # R1 (Eq. 7) differentiates D's input gradient again; fused SDPA kernels (flash / CPU
        # flash) have no double backward, so D's attention uses diffusers' plain-matmul processor
        from diffusers.models.attention_processor import Attention, AttnProcessor

        for m in self.modules():
            if isinstance(m, Attention):
                m.set_processor(AttnProcessor())
        self.requires_grad_(True)

    def features(self, z: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        """Mid-block features of ``z`` at time ``t`` (no noising here)."""
        ts = torch.as_tensor(t, dtype=z.dtype, device=z.device).expand(z.shape[0])
        emb = self.time_embedding(self.time_proj(ts * self.time_scale).to(z.dtype))
        h = self.conv_in(z)
        for block in self.down_blocks:
            if getattr(block, "has_cross_attention", False):
                h, _ = block(hidden_states=h, temb=emb, encoder_hidden_states=cond)
            else:
                h, _ = block(hidden_states=h, temb=emb)
        if self.mid_block is not None:
            if getattr(self.mid_block, "has_cross_attention", False):
                h = self.mid_block(h, emb, encoder_hidden_states=cond)
            else:
                h = self.mid_block(h, emb)
        return h

    def forward(self, z: Tensor, t: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        """Scores (B,): logits, or sigmoid probabilities for the quirk head."""
        if t is None or cond is None:
            raise ValueError("the T2I discriminator needs the time t and the text condition")
        t = torch.as_tensor(t, dtype=z.dtype, device=z.device).expand(z.shape[0])
        if self.noise_input:  # noise real and fake latents to the student's time t
            z = interpolant(z, torch.randn_like(z), t)
        s = self.head(self.features(z, t, cond)).mean(dim=(1, 2, 3))
        return torch.sigmoid(s) if self.head_kind == "sigmoid_softplus" else s
