"""One call that sets up what every notebook shares: data, latent codec, latents, cached teacher.

``prepare(P)`` trains nothing that is already cached, so notebooks 02+ start in seconds once
notebook 01 (or any earlier run with the same configuration) has trained the autoencoder and
the teacher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scflow.autoencoder import LatentCodec, ae_cache_config, get_codec
from scflow.cache import atomic_write_bytes, cached, entry_dir, entry_lock
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


def make_extractor(p: dict[str, Any], device: str = "cpu") -> Any:
    """The FID feature extractor of the preset: digits classifier (cached) or Inception."""
    from scflow.metrics import get_feature_extractor

    if p["fid_backend"] == "digits":
        return get_feature_extractor("digits", device=device, steps=p["classifier_steps"])
    return get_feature_extractor("inception", device=device)


def distill(p: dict[str, Any], s: Setup, method: dict[str, Any] | None = None,
            progress: bool = True) -> tuple[Any, list[dict[str, float]]]:
    """Run Algorithm 1 from the cached teacher; resumable, and cached when finished.

    ``p`` holds the distillation parameters; the teacher is the one of ``s`` (its preset).
    ``compile`` (speed only) is not part of the cache key: eager and compiled runs share
    students. ``method`` fixes the switches that define a notebook's method (e.g. notebook 02's CD:
    ``lambda_gan = lambda_rf = lambda_bi = 0``, ``t_trunc = 0``); they override ``p``.
    Checkpoints go to ``cache/distill-<hash>/last.pt`` every ``ckpt_every`` updates, with the
    loss history beside them: a killed run continues from its last checkpoint, and a finished
    one is loaded instead of retrained. Returns ``(distiller, history)``.
    """
    from scflow.distill import LatentData, config_from_params
    from scflow.teacher import teacher_cache_config
    from scflow.trainer import Distiller

    q = {**s.p, **p, **(method or {})}  # unexposed knobs: the preset's values
    cfg = config_from_params(q, seed=q["seed"])
    key = {"kind": "distill", "teacher": teacher_cache_config(s.p), "cfg": cfg.as_dict(),
           "steps": q["distill_steps"]}
    ckpt_dir = entry_dir("distill", key)
    with entry_lock(ckpt_dir):  # a parallel run training the same student: wait, then reuse it
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        (ckpt_dir / "config.json").write_text(json.dumps(key, sort_keys=True, indent=1,
                                                         default=str))
        cond = s.data.labels if s.p["class_cond"] else None
        d = Distiller(s.teacher, LatentData(s.latents, cond), cfg, device=q["device"],
                      ckpt_dir=str(ckpt_dir), compile=q.get("compile", "no"))
        hist_file = ckpt_dir / "history.json"
        history: list[dict[str, float]] = []
        if (ckpt_dir / "last.pt").exists():
            d.resume(str(ckpt_dir / "last.pt"))
            history = json.loads(hist_file.read_text())[: d.step_count]
        chunk = q["ckpt_every"] or q["distill_steps"]
        while d.step_count < q["distill_steps"]:
            history += d.train(min(chunk, q["distill_steps"] - d.step_count), progress=progress)
            atomic_write_bytes(hist_file, json.dumps(history).encode())  # after last.pt: consistent
    return d, history
