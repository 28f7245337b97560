"""Velocity networks behind ONE call signature: ``v = net(z, t, cond=None)``, ``t`` in [0, 1].

Teacher, student, target, samplers and losses never care which architecture is inside.
:class:`VelocityNet` wraps a diffusers model (``UNet2DModel``, ``UNet2DConditionModel`` or
``DiTTransformer2DModel``) and converts conventions in one place:

- ``time_scale``: the wrapped model sees the timestep ``t * time_scale`` (1000 for all of ours,
  like the DDPM-style embeddings the diffusers blocks were designed for);
- ``sign``: ``+1`` when the model predicts the paper's velocity (data -> noise, ``z1 - z0``),
  ``-1`` for InstaFlow / 2-RF checkpoints, whose UNet predicts noise -> data
  (``f(z, t) = z + t * u(z, 1000 t)``, docs/METHOD.md §6).
- ``cond``: class labels (LongTensor (B,)) for ``UNet2DModel``/DiT, text embeddings
  (B, L, D) for ``UNet2DConditionModel``. Class-conditional nets reserve the last class index
  as the null condition of classifier-free guidance (Eq. 3).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

# Named configurations: (diffusers class name, constructor kwargs). ``sample_size`` and the
# number of latent channels are filled in by :func:`build_velocity_net`.
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    # seconds-scale nets for tests and the smoke preset
    "unet_tiny": ("UNet2DModel", dict(
        block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))),
    # a wider miniature teacher: 2.8M parameters on 4x8x8 latents (~3x slower than unet_small)
    "unet_mini": ("UNet2DModel", dict(
        block_out_channels=(64, 128), layers_per_block=1, norm_num_groups=32,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=32)),
    # the miniature's teacher and students: half of unet_mini's width, 0.7M parameters, several
    # times faster per step than unet_mini on the 2-core CPU
    "unet_small": ("UNet2DModel", dict(
        block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=16,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=32)),
    # sized like LFM's CelebA-HQ teacher (ADM UNet: width 256, mult (1,2,2,2), 2 res blocks,
    # attention at the 4x4 level and in the middle block, 4 heads, scale-shift norm); equal to
    # scflow.adm.unet2d_config(LFM_CELEBA_F8_ADM), which LFM's weights load into. The middle
    # attention's GroupNorm needs attn_norm_num_groups: diffusers drops it for scale-shift nets
    "unet_lfm_celeba": ("UNet2DModel", dict(
        block_out_channels=(256, 512, 512, 512), layers_per_block=2, norm_num_groups=32,
        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
        attention_head_dim=128, resnet_time_scale_shift="scale_shift", attn_norm_num_groups=32)),
    "dit_tiny": ("DiTTransformer2DModel", dict(
        num_attention_heads=2, attention_head_dim=16, num_layers=2, patch_size=2,
        norm_num_groups=8)),
    # text-conditional (cross-attention) UNet, as in SD 1.5 but tiny
    "cond_unet_tiny": ("UNet2DConditionModel", dict(
        block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=8,
        cross_attention_dim=32)),
    "cond_unet_small": ("UNet2DConditionModel", dict(
        block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=16,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=32,
        cross_attention_dim=64)),
    "cond_unet_mini": ("UNet2DConditionModel", dict(
        block_out_channels=(64, 128), layers_per_block=1, norm_num_groups=32,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=32,
        cross_attention_dim=64)),
}

WRAPPER_FILE = "velocity.json"


def _diffusers_class(name: str) -> type:
    import diffusers

    return getattr(diffusers, name)


class VelocityNet(nn.Module):
    """A diffusers model called as ``v = net(z, t, cond=None)`` (see module docstring)."""

    def __init__(self, model: nn.Module, *, time_scale: float = 1000.0, sign: float = 1.0,
                 num_classes: int = 0, arch: str = "custom") -> None:
        super().__init__()
        if sign not in (1.0, -1.0):
            raise ValueError(f"sign must be +1 or -1 (got {sign})")
        self.model = model
        self.time_scale = float(time_scale)
        self.sign = float(sign)
        self.num_classes = int(num_classes)
        self.arch = arch
        self.kind = type(model).__name__

    @property
    def null_cond(self) -> int | None:
        """The null class index used for condition dropout and CFG (None if unconditional)."""
        return self.num_classes if self.num_classes else None

    def wrapper_config(self) -> dict[str, Any]:
        """Everything needed to rebuild this wrapper (hashable, compared on strict loads)."""
        return {"kind": self.kind, "arch": self.arch, "time_scale": self.time_scale,
                "sign": self.sign, "num_classes": self.num_classes,
                "model": _jsonable({k: v for k, v in self.model.config.items()
                                       if not k.startswith("_")})}

    def forward(self, z: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        t = torch.as_tensor(t, dtype=z.dtype, device=z.device).expand(z.shape[0])
        ts = t * self.time_scale
        if self.kind == "UNet2DConditionModel":
            if cond is None:
                raise ValueError("a text-conditional net needs cond (text embeddings)")
            out = self.model(z, ts, encoder_hidden_states=cond).sample
        elif self.kind == "UNet2DModel":
            labels = self._labels(cond, z) if self.num_classes else None
            out = self.model(z, ts, class_labels=labels).sample
        elif self.kind == "DiTTransformer2DModel":
            # DiT's adaLN-Zero always takes a label; unconditional nets use the single class 0
            labels = self._labels(cond, z) if self.num_classes else torch.zeros(
                z.shape[0], dtype=torch.long, device=z.device)
            out = self.model(z, timestep=ts, class_labels=labels).sample[:, : z.shape[1]]
        else:
            raise TypeError(f"unsupported model class {self.kind}")
        return self.sign * out

    def _labels(self, cond: Tensor | None, z: Tensor) -> Tensor:
        if cond is None:
            return torch.full((z.shape[0],), self.num_classes, dtype=torch.long, device=z.device)
        return cond.to(device=z.device, dtype=torch.long)

    # --- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """diffusers ``save_pretrained`` of the model plus the wrapper's conventions."""
        path = Path(path)
        self.model.save_pretrained(path / "model")
        (path / WRAPPER_FILE).write_text(json.dumps(self.wrapper_config(), indent=1))

    @classmethod
    def load(cls, path: str | Path, expected: dict[str, Any] | None = None) -> VelocityNet:
        """Load a net saved by :meth:`save`, strictly.

        ``expected`` (a :meth:`wrapper_config`) must match the saved one key by key: a checkpoint
        made with another architecture, time scale or head count is refused, never loaded.
        """
        path = Path(path)
        wfile = path / WRAPPER_FILE
        if not wfile.exists():
            raise FileNotFoundError(f"no velocity net saved at {path} (missing {WRAPPER_FILE})")
        saved = json.loads(wfile.read_text())
        if expected is not None:
            check_config_match(saved, _jsonable(expected), where=str(path))
        model = _diffusers_class(saved["kind"]).from_pretrained(path / "model")
        net = cls(model, time_scale=saved["time_scale"], sign=saved["sign"],
                  num_classes=saved["num_classes"], arch=saved["arch"])
        check_config_match(net.wrapper_config(), saved, where=str(path))
        return net


def build_velocity_net(arch: str, *, sample_size: int, channels: int = 4, num_classes: int = 0,
                       **overrides: Any) -> VelocityNet:
    """Build a randomly initialised net from a named config (:data:`CONFIGS`).

    ``num_classes > 0`` adds a class embedding with one extra (null) index for CFG.
    """
    if arch not in CONFIGS:
        raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(CONFIGS)}")
    cls_name, kwargs = CONFIGS[arch]
    kwargs = {**copy.deepcopy(kwargs), **overrides}
    if cls_name == "DiTTransformer2DModel":
        kwargs.update(sample_size=sample_size, in_channels=channels, out_channels=channels,
                      num_embeds_ada_norm=max(num_classes + 1, 1))
    else:
        kwargs.update(sample_size=sample_size, in_channels=channels, out_channels=channels)
        if cls_name == "UNet2DModel" and num_classes:
            kwargs["num_class_embeds"] = num_classes + 1
    if cls_name == "UNet2DConditionModel" and num_classes:
        raise ValueError("text-conditional nets take embeddings, not class labels")
    model = _diffusers_class(cls_name)(**kwargs)
    return VelocityNet(model, num_classes=num_classes, arch=arch)


def check_config_match(found: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Raise listing every differing key when two configs disagree (strict checkpoint loading)."""
    keys = sorted(set(found) | set(expected))
    diffs = [f"{k}: checkpoint {found.get(k)!r} != expected {expected.get(k)!r}"
             for k in keys if not k.startswith("_") and found.get(k) != expected.get(k)]
    if diffs:
        raise ValueError(f"checkpoint at {where} does not match the requested config:\n  "
                         + "\n  ".join(diffs))


def _jsonable(x: Any) -> Any:
    """Round-trip through JSON so tuples/lists and numpy scalars compare equal."""
    return json.loads(json.dumps(x, default=str))


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
