"""One call that sets up what every notebook shares: data, latent codec, latents, cached teacher.

``prepare(P)`` trains nothing that is already cached, so notebooks 02+ start in seconds once
notebook 01 (or any earlier run with the same configuration) has trained the autoencoder and
the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scflow.autoencoder import LatentCodec, ae_cache_config, get_codec
from scflow.cache import cached
from scflow.data import ImageSet, load_digits_images, load_image_folder
from scflow.nets import VelocityNet
from scflow.teacher import get_teacher


@dataclass
class Setup:
    """The shared state of an experiment (see :func:`prepare`)."""

    p: dict[str, Any]
    data: ImageSet
    codec: LatentCodec
    latents: Tensor
    teacher: VelocityNet
    teacher_dir: Path
    device: str
    cache_hits: dict[str, bool]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.latents.shape[1:])


def resolve_device(device: str) -> str:
    """'auto' -> what accelerate picks on this machine (cuda/mps/cpu); else as given."""
    if device != "auto":
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device='cuda' requested but no CUDA GPU is available; use 'auto' or 'cpu'")
        return device
    from accelerate import PartialState

    return str(PartialState().device)


def load_data(p: dict[str, Any]) -> ImageSet:
    """The training images of the preset: the embedded digits or a folder (``data_dir``)."""
    if p["dataset"] == "digits":
        data = load_digits_images(p["resolution"])
    else:
        if not p["data_dir"]:
            raise ValueError("dataset='folder' needs data_dir (a folder of images, e.g. CelebA-HQ)")
        data = load_image_folder(p["data_dir"], p["resolution"], limit=p["data_limit"] or None)
    if p["data_limit"] and len(data) > p["data_limit"]:
        labels = None if data.labels is None else data.labels[: p["data_limit"]]
        data = ImageSet(data.images[: p["data_limit"]], labels, data.source)
    return data


def fixed_noise(n: int, shape: tuple[int, ...], seed: int) -> Tensor:
    """The evaluation noise: the same tensor for every NFE and every method (paired comparisons).

    Drawn from its own generator (seed offset so it never coincides with training noise).
    """
    g = torch.Generator().manual_seed(10_000 + seed)
    return torch.randn((n, *shape), generator=g)


def prepare(p: dict[str, Any], progress: bool = True) -> Setup:
    """Data -> autoencoder (cached) -> latents (cached) -> teacher (cached) for parameters ``p``."""
    device = resolve_device(p["device"])
    data = load_data(p)
    codec, ae_hit = get_codec(p, data.images, progress=progress)
    codec.vae.to(device)

    def build_latents(d: Path) -> None:
        torch.save(codec.encode(data.images), d / "latents.pt")

    lat_cfg = {"kind": "latents", "codec": ae_cache_config(p) if not p["vae"] else p["vae"],
               "latent_scale": p["latent_scale"], "n": len(data)}
    lat_dir, lat_hit = cached("latents", lat_cfg, build_latents)
    latents = torch.load(lat_dir / "latents.pt")
    teacher, tdir, t_hit = get_teacher(p, latents, data.labels, device=device, progress=progress)
    return Setup(p, data, codec, latents, teacher, tdir, device,
                 {"autoencoder": ae_hit, "latents": lat_hit, "teacher": t_hit})
