"""The latent space: diffusers ``AutoencoderKL``, trained here (miniature) or pretrained (SD VAE).

The paper works on SD-VAE latents ``z0 = s * E(x)`` with ``s = 0.18215`` (docs/METHOD.md §1).
The miniature trains a small ``AutoencoderKL`` on the digits, maps 1x32x32 images to 4x8x8
latents (the SD layout: 4 channels, 8x down-sampled at real scale, 4x here) and picks ``s`` so the
training latents have unit standard deviation, as SD's constant was chosen. How the latent space
is made is an :class:`AutoencoderConfig`; :func:`get_codec` returns it (trained once, cached).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scflow.cache import cached
from scflow.checks import choice, integer, number, text
from scflow.data import DataConfig, data_cache_key

# Named AutoencoderKL configs; each has 3 blocks = 2 down-samplings (32 px -> 8x8 latents).
AE_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": dict(block_out_channels=(8, 8, 8), norm_num_groups=4, layers_per_block=1,
                 mid_block_add_attention=False),
    # small on purpose: on a 2-core CPU the 32x32 convolutions dominate the miniature's set-up
    "mini": dict(block_out_channels=(16, 32, 32), norm_num_groups=8, layers_per_block=1,
                 mid_block_add_attention=False),
}


@dataclass(frozen=True)
class AutoencoderConfig:
    """The latent codec: a pretrained ``AutoencoderKL`` or one trained here; validated on construction."""

    pretrained: str = ""  # '' = train one here; else a local folder or hub id (the SD VAE)
    arch: str = "mini"  # named config of the trained one (AE_CONFIGS)
    steps: int = 400  # its training steps
    kl_weight: float = 1e-6  # weight of its KL term
    latent_scale: float = 0.0  # z0 = s E(x); 0: 1/std of the training latents (SD VAE: 0.18215)
    seed: int = 0

    def __post_init__(self) -> None:
        text("vae", self.pretrained)
        choice("vae_config", self.arch, tuple(AE_CONFIGS))
        integer("vae_steps", self.steps, ge=1)
        number("vae_kl_weight", self.kl_weight, ge=0.0)
        number("latent_scale", self.latent_scale, ge=0.0)
        integer("seed", self.seed, ge=0)


@dataclass
class LatentCodec:
    """``encode``: images in [-1, 1] -> ``s * E(x)`` (posterior mode); ``decode``: the inverse."""

    vae: Any  # diffusers.AutoencoderKL
    scale: float

    @torch.inference_mode()
    def encode(self, images: Tensor, batch_size: int = 256) -> Tensor:
        dev = next(self.vae.parameters()).device
        out = [self.vae.encode(images[i: i + batch_size].to(dev)).latent_dist.mode()
               for i in range(0, images.shape[0], batch_size)]
        return torch.cat(out).float().cpu() * self.scale

    @torch.inference_mode()
    def decode(self, latents: Tensor, batch_size: int = 256) -> Tensor:
        dev = next(self.vae.parameters()).device
        out = [self.vae.decode(latents[i: i + batch_size].to(dev) / self.scale).sample
               for i in range(0, latents.shape[0], batch_size)]
        return torch.cat(out).float().cpu()


def build_autoencoder(config: str, in_channels: int, latent_channels: int = 4) -> Any:
    """A randomly initialised ``AutoencoderKL`` from a named config (:data:`AE_CONFIGS`)."""
    from diffusers import AutoencoderKL

    if config not in AE_CONFIGS:
        raise ValueError(f"unknown autoencoder config {config!r}; valid: {', '.join(AE_CONFIGS)}")
    kw = AE_CONFIGS[config]
    n = len(kw["block_out_channels"])
    return AutoencoderKL(in_channels=in_channels, out_channels=in_channels,
                         down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n,
                         latent_channels=latent_channels, **kw)


def train_autoencoder(images: Tensor, config: str, steps: int, kl_weight: float = 1e-6,
                      batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                      progress: bool = False) -> Any:
    """Train an AutoencoderKL on ``images``: MSE reconstruction + ``kl_weight`` * KL."""
    from scflow.progress import progress as progress_bar

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    vae = build_autoencoder(config, in_channels=images.shape[1])
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    for _ in progress_bar(steps, desc="autoencoder", disable=not progress):
        x = images[torch.randint(0, images.shape[0], (batch_size,), generator=g)]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        loss = (rec - x).pow(2).mean() + kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return vae.eval().requires_grad_(False)


def ae_cache_config(cfg: AutoencoderConfig, data: DataConfig) -> dict[str, Any]:
    """What a trained autoencoder's cache entry depends on (and nothing else).

    The key names are the notebook parameters' (those of the shipped artefacts' keys).
    """
    return {"kind": "autoencoder", "definition": AE_CONFIGS.get(cfg.arch),
            "dataset": data.dataset, "data_dir": data.data_dir, "data_limit": data.limit,
            "resolution": data.resolution, "vae_config": cfg.arch, "vae_steps": cfg.steps,
            "vae_kl_weight": cfg.kl_weight, "latent_scale": cfg.latent_scale, "seed": cfg.seed,
            **data_cache_key(data)}


def latent_space_key(cfg: AutoencoderConfig, data: DataConfig) -> Any:
    """What latents depend on: the trained autoencoder's key, or the pretrained VAE's name and
    the data it encodes (the digits: the name alone, as before folders were keyed)."""
    if not cfg.pretrained:
        return ae_cache_config(cfg, data)
    content = data_cache_key(data)
    return {"vae": cfg.pretrained, **content} if content else cfg.pretrained


def get_codec(cfg: AutoencoderConfig, data: DataConfig, images: Tensor,
              progress: bool = False) -> tuple[LatentCodec, bool]:
    """The latent codec of ``cfg`` for ``images`` (the images of ``data``): pretrained, or
    trained on a cache miss and cached.

    Returns ``(codec, cache_hit)``; a pretrained VAE is always a "hit" (nothing trained).
    """
    if cfg.pretrained:
        from scflow.pretrained import SD_LATENT_SCALE, load_vae

        vae = load_vae(cfg.pretrained).eval().requires_grad_(False)
        return LatentCodec(vae, cfg.latent_scale or SD_LATENT_SCALE), True

    def build(d: Path) -> None:
        vae = train_autoencoder(images, cfg.arch, cfg.steps, cfg.kl_weight, seed=cfg.seed,
                                progress=progress)
        scale = cfg.latent_scale or 1.0 / LatentCodec(vae, 1.0).encode(images).std().item()
        vae.save_pretrained(d / "vae")
        (d / "scale.json").write_text(json.dumps({"scale": scale}))

    from diffusers import AutoencoderKL

    d, hit = cached("autoencoder", ae_cache_config(cfg, data), build)
    vae = AutoencoderKL.from_pretrained(d / "vae").eval().requires_grad_(False)
    return LatentCodec(vae, json.loads((d / "scale.json").read_text())["scale"]), hit
