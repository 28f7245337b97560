"""LFM's ADM teacher (guided-diffusion ``UNetModel``) as a diffusers ``UNet2DModel``.

The paper's CelebA-HQ 256 experiments (Tables 3-6) distil LFM's latent flow-matching teacher
``celeba_f8_adm`` (checkpoint ``model_480.pth``): an ADM UNet on SD-VAE latents 4x32x32.
:func:`convert_adm_state_dict` maps its raw state dict onto a ``UNet2DModel`` whose config
(:func:`unet2d_config`) reproduces the ADM forward exactly:

- ADM ``timestep_embedding`` = ``cat(cos, sin)`` of ``t * 10000^(-i/half)``: diffusers'
  ``Timesteps`` with ``flip_sin_to_cos=True, freq_shift=0``;
- ``use_scale_shift_norm``: ``resnet_time_scale_shift="scale_shift"`` (``norm(h) (1 + s) + b``,
  scale first in the projected embedding, as in ADM);
- attention with a fixed number of heads per block: ``attention_head_dim = channels / heads``,
  and the middle block's attention keeps its GroupNorm only with ``attn_norm_num_groups=32``
  (diffusers drops it for scale-shift UNets otherwise);
- ADM's fused ``qkv`` 1x1 conv is split into ``to_q/to_k/to_v``; in the legacy head order
  (``use_new_attention_order=False``, LFM's) the channels are grouped per head as [q, k, v].

Conventions (METHOD.md Sec. 1 and 6): LFM trains with ``z_t = (1 - t) z0 + (s + (1 - s) t) z1``,
``s = 1e-5``, target ``(1 - s) z1 - z0``, and calls the net as ``model(t, z_t)`` with the raw
``t`` in [0, 1] (t = 1 noise); it samples by integrating ``dz/dt = model(t, z)`` from t = 1 to 0.
That is this project's velocity up to ``s``: the wrapper is ``VelocityNet(unet, time_scale=1,
sign=+1)``, so :func:`scflow.samplers.euler_sample` is LFM's fixed-step Euler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scflow.nets import VelocityNet
from scflow.pretrained import WeightsUnavailableError, lfm_download_command, load_lfm_state_dict

ADM_GROUPS = 32
"""ADM's ``normalization()`` is always ``GroupNorm(32, channels)`` (eps 1e-5)."""

@dataclass(frozen=True)
class ADMConfig:
    """Constructor arguments of guided-diffusion's ``UNetModel`` (names as there).

    ``attention_resolutions`` holds downsampling rates (1 = full latent resolution), exactly
    as LFM passes ``--attn_resolutions`` to the model: LFM's ``16 8`` puts attention at rate 8
    only (the 4x4 level of a 32x32 latent; rate 16 does not exist with four levels).
    """

    image_size: int = 32
    in_channels: int = 4
    model_channels: int = 256
    out_channels: int = 4
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (16, 8)
    channel_mult: tuple[int, ...] = (1, 2, 2, 2)
    conv_resample: bool = True
    num_heads: int = 4
    num_head_channels: int = -1
    num_heads_upsample: int = -1
    use_scale_shift_norm: bool = True
    resblock_updown: bool = False
    use_new_attention_order: bool = False

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for guided-diffusion's ``UNetModel`` (dropout 0, unconditional)."""
        return asdict(self)


LFM_CELEBA_F8_ADM = ADMConfig()
"""LFM's ``celeba_f8_adm`` (``test_args/celeb256_adm.txt`` and the argparse defaults of its
``test_flow_latent.py``: nf 256, ch_mult 1 2 2 2, 2 res blocks, attn_resolutions 16 8,
4 heads, scale-shift norm, conv resampling, legacy attention order, 4 -> 4 channels)."""


def _levels(cfg: ADMConfig) -> list[tuple[int, int, bool]]:
    """(level, channels, has attention) for each resolution level, top (rate 1) first."""
    return [(lvl, cfg.model_channels * m, 2 ** lvl in cfg.attention_resolutions)
            for lvl, m in enumerate(cfg.channel_mult)]


def _heads(cfg: ADMConfig, channels: int, upsample: bool = False) -> int:
    if cfg.num_head_channels != -1:
        return channels // cfg.num_head_channels
    if upsample and cfg.num_heads_upsample != -1:
        return cfg.num_heads_upsample
    return cfg.num_heads


def unet2d_config(cfg: ADMConfig) -> dict[str, Any]:
    """``UNet2DModel`` constructor arguments whose forward equals ADM's ``cfg`` (module doc).

    Raises:
        NotImplementedError: for ADM options ``UNet2DModel`` cannot express (residual up/down
            sampling, average-pool resampling, attention head widths that differ between blocks).
    """
    if cfg.resblock_updown:
        raise NotImplementedError("resblock_updown=True (ResBlock resampling) has no "
                                  "UNet2DModel equivalent")
    if not cfg.conv_resample:
        raise NotImplementedError("conv_resample=False (pooling/no-conv upsampling) has no "
                                  "UNet2DModel equivalent")
    levels = _levels(cfg)
    bad = [c for _, c, _ in levels if c % ADM_GROUPS]
    if bad:
        raise ValueError(f"ADM channel widths must be multiples of {ADM_GROUPS}: {bad}")
    # every attention layer (down, middle, up) must share one head width: UNet2DModel has one
    top = levels[-1][1]
    widths = {top // _heads(cfg, top)}
    for _, c, attn in levels:
        if attn:
            widths |= {c // _heads(cfg, c), c // _heads(cfg, c, upsample=True)}
    if len(widths) != 1:
        raise NotImplementedError(f"attention head widths differ between blocks {sorted(widths)}: "
                                  "UNet2DModel has a single attention_head_dim")
    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for _, _, a in levels)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for _, _, a in reversed(levels))
    return dict(
        sample_size=cfg.image_size, in_channels=cfg.in_channels, out_channels=cfg.out_channels,
        block_out_channels=tuple(c for _, c, _ in levels), layers_per_block=cfg.num_res_blocks,
        down_block_types=down, up_block_types=up, attention_head_dim=widths.pop(),
        norm_num_groups=ADM_GROUPS, attn_norm_num_groups=ADM_GROUPS, norm_eps=1e-5,
        resnet_time_scale_shift="scale_shift" if cfg.use_scale_shift_norm else "default",
        flip_sin_to_cos=True, freq_shift=0, downsample_padding=1)


# --- key map ---------------------------------------------------------------------------------
# Each entry: ADM key -> (diffusers key, kind); kind says how the tensor is reshaped.
_Rule = tuple[str, str]


def _resnet(adm: str, dif: str, shortcut: bool) -> dict[str, _Rule]:
    pairs = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
             "out_layers.0": "norm2", "out_layers.3": "conv2"}
    if shortcut:
        pairs["skip_connection"] = "conv_shortcut"
    return {f"{adm}.{a}.{p}": (f"{dif}.{d}.{p}", "copy")
            for a, d in pairs.items() for p in ("weight", "bias")}


def _attention(adm: str, dif: str, heads: int) -> dict[str, _Rule]:
    rules: dict[str, _Rule] = {}
    for p in ("weight", "bias"):
        rules[f"{adm}.norm.{p}"] = (f"{dif}.group_norm.{p}", "copy")
        rules[f"{adm}.qkv.{p}"] = (f"{dif}.to_qkv.{p}", f"qkv:{heads}")
        rules[f"{adm}.proj_out.{p}"] = (f"{dif}.to_out.0.{p}", "conv1d")
    return rules


def adm_key_map(cfg: ADMConfig) -> dict[str, _Rule]:
    """Every parameter key of ADM's ``UNetModel(cfg)`` with its ``UNet2DModel`` counterpart.

    Built from the ADM block layout (input blocks: stem conv, then per level ``num_res_blocks``
    ResBlocks [+ attention] and a downsampler except at the last level; middle: ResBlock,
    attention, ResBlock; output blocks: per level ``num_res_blocks + 1`` ResBlocks on the
    concatenated skips [+ attention] and an upsampler except at the top level).
    """
    unet2d_config(cfg)  # refuse what UNet2DModel cannot express before mapping
    rules: dict[str, _Rule] = {}

    def conv(adm: str, dif: str) -> None:
        rules.update({f"{adm}.{p}": (f"{dif}.{p}", "copy") for p in ("weight", "bias")})

    conv("time_embed.0", "time_embedding.linear_1")
    conv("time_embed.2", "time_embedding.linear_2")
    conv("input_blocks.0.0", "conv_in")
    levels = _levels(cfg)
    idx, ch, skips = 1, cfg.model_channels * cfg.channel_mult[0], []
    skips.append(ch)
    for lvl, c, attn in levels:
        for j in range(cfg.num_res_blocks):
            rules.update(_resnet(f"input_blocks.{idx}.0", f"down_blocks.{lvl}.resnets.{j}",
                                 shortcut=ch != c))
            if attn:
                rules.update(_attention(f"input_blocks.{idx}.1", f"down_blocks.{lvl}.attentions.{j}",
                                        _heads(cfg, c)))
            ch = c
            skips.append(ch)
            idx += 1
        if lvl != len(levels) - 1:
            conv(f"input_blocks.{idx}.0.op", f"down_blocks.{lvl}.downsamplers.0.conv")
            skips.append(ch)
            idx += 1
    rules.update(_resnet("middle_block.0", "mid_block.resnets.0", shortcut=False))
    rules.update(_attention("middle_block.1", "mid_block.attentions.0", _heads(cfg, ch)))
    rules.update(_resnet("middle_block.2", "mid_block.resnets.1", shortcut=False))
    idx = 0
    for up, (lvl, c, attn) in enumerate(reversed(levels)):
        for j in range(cfg.num_res_blocks + 1):
            rules.update(_resnet(f"output_blocks.{idx}.0", f"up_blocks.{up}.resnets.{j}",
                                 shortcut=ch + skips.pop() != c))
            ch = c
            sub = 1
            if attn:
                rules.update(_attention(f"output_blocks.{idx}.1", f"up_blocks.{up}.attentions.{j}",
                                        _heads(cfg, c, upsample=True)))
                sub = 2
            if lvl and j == cfg.num_res_blocks:
                conv(f"output_blocks.{idx}.{sub}.conv", f"up_blocks.{up}.upsamplers.0.conv")
            idx += 1
    conv("out.0", "conv_norm_out")
    conv("out.2", "conv_out")
    return rules


def _split_qkv(w: Tensor, heads: int, legacy: bool) -> tuple[Tensor, Tensor, Tensor]:
    """ADM's fused qkv rows -> (q, k, v) rows in diffusers' head-major order.

    Legacy order (LFM's): rows are [q_h, k_h, v_h] per head h; new order: [q, k, v], each
    head-major already.
    """
    width = w.shape[0] // 3
    if legacy:
        per_head = w.reshape(heads, 3, width // heads, *w.shape[1:])
        return tuple(per_head[:, i].reshape(width, *w.shape[1:]) for i in range(3))  # type: ignore[return-value]
    return w[:width], w[width: 2 * width], w[2 * width:]


def convert_adm_state_dict(state: Mapping[str, Tensor], cfg: ADMConfig = LFM_CELEBA_F8_ADM
                           ) -> dict[str, Tensor]:
    """ADM ``UNetModel(cfg)`` state dict -> ``UNet2DModel(**unet2d_config(cfg))`` state dict.

    A DDP ``module.`` prefix is stripped. Raises ``ValueError`` naming every missing and every
    unexpected key (e.g. a checkpoint of another config, or a class-conditional one).
    """
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    rules = adm_key_map(cfg)
    missing = sorted(set(rules) - set(state))
    unexpected = sorted(set(state) - set(rules))
    if missing or unexpected:
        raise ValueError("state dict does not fit ADM config "
                         f"{cfg}:\n  missing: {missing[:20]}{' ...' if len(missing) > 20 else ''}"
                         f"\n  unexpected: {unexpected[:20]}"
                         f"{' ...' if len(unexpected) > 20 else ''}")
    out: dict[str, Tensor] = {}
    for key, (dst, kind) in rules.items():
        w = state[key]
        if kind == "copy":
            out[dst] = w
        elif kind == "conv1d":  # 1x1 Conv1d (C, C, 1) -> Linear (C, C)
            out[dst] = w.squeeze(-1) if w.ndim == 3 else w
        else:  # qkv:<heads>
            heads = int(kind.split(":")[1])
            w = w.squeeze(-1) if w.ndim == 3 else w
            if w.shape[0] % (3 * heads):
                raise ValueError(f"{key}: shape {tuple(w.shape)} does not split into q, k, v "
                                 f"of {heads} heads")
            q, k, v = _split_qkv(w, heads, legacy=not cfg.use_new_attention_order)
            base = dst[: -len(".to_qkv.weight")] if dst.endswith("weight") else \
                dst[: -len(".to_qkv.bias")]
            p = dst.rsplit(".", 1)[1]
            out[f"{base}.to_q.{p}"], out[f"{base}.to_k.{p}"], out[f"{base}.to_v.{p}"] = q, k, v
    return out


def build_adm_unet(state: Mapping[str, Tensor], cfg: ADMConfig = LFM_CELEBA_F8_ADM) -> Any:
    """A ``UNet2DModel`` (eval mode) holding the converted ADM weights, loaded strictly.

    Raises ``ValueError`` naming every key whose shape differs from ``cfg``'s architecture.
    """
    from diffusers import UNet2DModel

    converted = convert_adm_state_dict(state, cfg)
    with torch.device("meta"):  # no random init of 153M weights that are overwritten anyway
        model = UNet2DModel(**unet2d_config(cfg))
    target = model.state_dict()
    rules = {dst: src for src, (dst, _) in adm_key_map(cfg).items()}
    wrong = [f"{k} (from ADM {_source(k, rules)}): got {tuple(v.shape)}, "
             f"expected {tuple(target[k].shape)}"
             for k, v in converted.items() if k in target and v.shape != target[k].shape]
    if wrong:
        raise ValueError("ADM state dict has tensors of the wrong shape for "
                         f"{cfg}:\n  " + "\n  ".join(wrong))
    # own copies: the caller's tensors (e.g. a live reference model's) stay independent
    model.load_state_dict({k: v.detach().clone().contiguous() for k, v in converted.items()},
                          strict=True, assign=True)
    return model.eval()


def _source(key: str, rules: Mapping[str, str]) -> str:
    for suffix in (".to_q.", ".to_k.", ".to_v."):
        if suffix in key:
            key = key.replace(suffix, ".to_qkv.")
    return rules.get(key, "?")


def adm_velocity_net(state: Mapping[str, Tensor], cfg: ADMConfig = LFM_CELEBA_F8_ADM,
                     arch: str = "lfm_adm") -> VelocityNet:
    """The converted ADM net in this project's signature ``v = net(z, t, cond=None)``.

    LFM feeds the raw ``t`` in [0, 1] (time_scale 1) and its velocity already points data ->
    noise (sign +1); see the module docstring.
    """
    return VelocityNet(build_adm_unet(state, cfg), time_scale=1.0, sign=1.0, arch=arch)


def load_lfm_teacher(path: str | Path, cfg: ADMConfig = LFM_CELEBA_F8_ADM) -> VelocityNet:
    """LFM's ``model_480.pth`` (or another ADM checkpoint of ``cfg``) as a frozen teacher.

    Fails at once, with the download command, when the file is missing.
    """
    check_lfm_checkpoint(path)
    net = adm_velocity_net(load_lfm_state_dict(path), cfg, arch=f"lfm_adm:{Path(path).name}")
    return net.eval().requires_grad_(False)


def check_lfm_checkpoint(path: str | Path) -> Path:
    """Return ``path`` if it is a file, else raise ``WeightsUnavailableError`` with the command."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsUnavailableError(
            f"teacher_checkpoint {str(path)!r}: no such file. LFM's CelebA-HQ 256 teacher "
            f"(celeba_f8_adm, model_480.pth) is published on Google Drive; on a machine with "
            f"network run\n    {lfm_download_command(path)}\nthen rerun, or set "
            f"teacher_checkpoint '' to train a teacher here instead.")
    return p
