"""One call that sets up what every notebook shares: data, latent codec, latents, cached teacher.

``prepare(P)`` trains nothing that is already cached, so notebooks 02+ start in seconds once
notebook 01 (or any earlier run with the same configuration) has trained the autoencoder and
the teacher.
"""

from __future__ import annotations

import io
import json
import pickle
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scflow.autoencoder import LatentCodec, get_codec, latent_space_key
from scflow.cache import (
    atomic_write_bytes,
    cache_root,
    cached,
    entry_dir,
    entry_lock,
    shipped_manifest_problems,
    unwritable,
)
from scflow.data import ImageSet, load_digits_images, load_image_folder
from scflow.nets import VelocityNet
from scflow.repro.presets import preset_values
from scflow.teacher import check_teacher_source, get_teacher


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


class NotReadyError(RuntimeError):
    """Files, hardware or settings a run needs are missing (raised before any compute)."""


def preflight(p: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Check, before any compute, everything a run with parameters ``p`` needs from outside.

    ``p`` holds the values the run's shared parts use (the preset's, with the run's own
    parameters over them). Returns ``(problems, warnings)``: every missing item at once, each
    with what to do, and the choices that run but measure something else (digits-classifier
    FID on images that are not the digits).
    """
    from scflow.data import image_files
    from scflow.hub import WeightsUnavailableError, resolve_pretrained

    problems: list[str] = []
    warnings: list[str] = []
    if p.get("device") == "cuda" and not torch.cuda.is_available():
        problems.append("CUDA GPU: device='cuda' but this machine has none; run on a GPU machine, "
                        "or set device: cpu (or auto) / use --preset mini")
    if p.get("dataset") == "folder":
        if not p.get("data_dir"):
            problems.append("data: dataset='folder' needs data_dir (a folder of images)")
        else:
            try:
                n = len(image_files(p["data_dir"], p.get("data_limit") or None))
            except FileNotFoundError as err:
                problems.append(f"data: {err}; put the images there (CelebA-HQ 256: see the "
                                f"README, 'Real data and weights') or set data_dir")
            else:
                if n < MIN_IMAGES:
                    problems.append(f"data: {n} image(s) under {p['data_dir']}"
                                    f"{' (data_limit)' if p.get('data_limit') else ''}; a run "
                                    f"needs at least {MIN_IMAGES} (precision / recall compare "
                                    f"each image with its 3 nearest): add images")
        if p.get("class_cond"):
            problems.append("class_cond=True needs class labels, and a folder dataset has none: "
                            "set class_cond: false")
        if p.get("fid_backend") == "digits":
            warnings.append("fid_backend='digits' on a folder dataset: FID then uses the features "
                            "of a handwritten-digits classifier, which say little about other "
                            "images; use fid_backend: inception for photos")
    if p.get("vae"):
        try:
            resolve_pretrained(p["vae"], what="the SD VAE (AutoencoderKL)", param="vae")
        except WeightsUnavailableError as err:
            problems.append(f"VAE weights: {err}")
    if p.get("teacher_checkpoint"):
        from scflow.adm import check_lfm_checkpoint

        try:
            check_lfm_checkpoint(p["teacher_checkpoint"])
        except WeightsUnavailableError as err:
            problems.append(f"teacher weights: {err}")
        if p.get("class_cond"):
            problems.append("teacher_checkpoint is LFM's unconditional teacher: set class_cond: false")
    if p.get("fid_backend") == "inception":
        from scflow.metrics.features import find_inception_weights

        try:
            find_inception_weights()
        except WeightsUnavailableError as err:
            problems.append(f"Inception weights: {err}")
    problems += shipped_manifest_problems()
    problems += [f"{what} folder: {x}" for what, x in (("cache", unwritable(cache_root())),
                                                       ("results", _results_problem(p))) if x]
    return problems, warnings


MIN_IMAGES = 4
"""Fewest training images a run accepts: precision / recall (k = 3) need k + 1 real images."""


def _results_problem(p: Mapping[str, Any]) -> str | None:
    """Why the run could not write its CSV and figures (checked before it trains)."""
    from scflow.repro.results import output_dir

    try:
        return unwritable(output_dir(p.get("preset", "mini")))
    except ValueError as err:  # $SCFLOW_RESULTS names a file
        return str(err)


def check_ready(p: Mapping[str, Any], where: str = "this run") -> None:
    """:func:`preflight`; raise :class:`NotReadyError` listing every problem, warn otherwise."""
    import warnings as _warnings

    problems, warns = preflight(p)
    for w in warns:
        _warnings.warn(f"{where}: {w}", stacklevel=2)
    if problems:
        raise NotReadyError(f"{where} cannot start; {len(problems)} missing (nothing was "
                            f"computed):\n" + "\n".join(f"- {x}" for x in problems))


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
    elif p["dataset"] == "mnist":
        from scflow.mnist import load_mnist_images

        data = load_mnist_images(p["resolution"])
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
    check_teacher_source(p)  # a missing teacher checkpoint fails before the data is read
    device = resolve_device(p["device"])
    data = load_data(p)
    codec, ae_hit = get_codec(p, data.images, progress=progress)
    codec.vae.to(device)

    def build_latents(d: Path) -> None:
        torch.save(codec.encode(data.images), d / "latents.pt")

    lat_cfg = {"kind": "latents", "codec": latent_space_key(p),
               "latent_scale": p["latent_scale"], "n": len(data)}
    lat_dir, lat_hit = cached("latents", lat_cfg, build_latents)
    latents = load_cached_tensor(lat_dir / "latents.pt")
    teacher, tdir, t_hit = get_teacher(p, latents, data.labels, device=device, progress=progress)
    return Setup(p, data, codec, latents, teacher, tdir, device,
                 {"autoencoder": ae_hit, "latents": lat_hit, "teacher": t_hit})


def load_cached_tensor(path: Path) -> Tensor:
    """``torch.load`` of a file in a cache entry; a damaged one is named with what to do."""
    try:
        return torch.load(path)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise RuntimeError(f"{path} is truncated or corrupt ({type(err).__name__}): delete the "
                           f"cache entry {path.parent} (it is rebuilt on the next run)") from None


def upstream_params(P: Mapping[str, Any]) -> dict[str, Any]:
    """What notebooks 02-06 share with notebook 01: the preset's data, autoencoder and teacher.

    Those values come from the preset (so every student distils the same cached teacher); the
    run's own ``device`` is kept, so that the teacher, the student and the evaluation all run
    where the run asked.
    """
    return {**preset_values(P["preset"]), "device": P["device"]}


def make_extractor(p: Mapping[str, Any], device: str = "cpu") -> Any:
    """The FID feature extractor a run asked for: digits classifier (cached) or Inception.

    ``p`` must be the run's own parameters (``P``), not the preset's: its ``fid_backend`` is
    also the CSV's ``feature_backend`` label.
    """
    from scflow.metrics import get_feature_extractor

    if p["fid_backend"] == "digits":
        # trained on the run's digits (notebook 01 has a `dataset`; the others take the preset's);
        # a folder dataset has no labels: the classifier of the embedded digits then
        data = p["dataset"] if "dataset" in p else preset_values(p["preset"])["dataset"]
        return get_feature_extractor("digits", device=device, steps=p["classifier_steps"],
                                     dataset="mnist" if data == "mnist" else "digits")
    return get_feature_extractor("inception", device=device)


def distill(p: dict[str, Any], s: Setup, method: dict[str, Any] | None = None,
            progress: bool = True, snapshots: Sequence[int] = ()) -> tuple[Any, list[dict[str, float]]]:
    """Run Algorithm 1 from the cached teacher; resumable, and cached when finished.

    ``p`` holds the distillation parameters; the teacher is the one of ``s`` (its preset).
    ``compile`` (speed only) is not part of the cache key: eager and compiled runs share
    students. ``method`` fixes the switches that define a notebook's method (e.g. notebook 02's CD:
    ``lambda_gan = lambda_rf = lambda_bi = 0``, ``t_trunc = 0``); they override ``p``.
    Checkpoints go to ``cache/distill-<hash>/last.pt`` every ``ckpt_every`` updates, with the
    loss history inside them (``history.json`` beside them is a copy for reading, never read
    back): a killed run continues from its last checkpoint, and a finished one is loaded
    instead of retrained; either only if the same code wrote it (else refused, see
    :func:`scflow.checkpoint.load_checkpoint`). ``snapshots`` lists updates after which the evaluation
    EMA's weights are also kept (``eval_ema-<step>.pt`` beside ``last.pt``, see
    :func:`snapshot_path`), so one run yields a whole training-budget curve. Returns
    ``(distiller, history)``.
    """
    from scflow.distill import LatentData, config_from_params
    from scflow.teacher import teacher_cache_config
    from scflow.trainer import Distiller

    # unexposed knobs: the preset's values. A read-through view (not a merged copy), so that
    # only the parameters this function actually uses are read from ``p``.
    q = ChainMap(dict(method or {}), p, s.p)
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
        if (ckpt_dir / "last.pt").exists():
            d.resume(str(ckpt_dir / "last.pt"))  # with its history; refused if other code wrote it
        bad = [k for k in snapshots if not 1 <= k <= q["distill_steps"]]
        if bad:
            raise ValueError(f"snapshots {bad} outside 1..distill_steps={q['distill_steps']}")

        def keep_snapshot(step: int, _logs: dict[str, float]) -> None:
            if step in snapshots:
                buf = io.BytesIO()
                torch.save(d.eval_ema.state_dict(), buf)
                atomic_write_bytes(snapshot_path(ckpt_dir, step), buf.getvalue())

        chunk = q["ckpt_every"] or q["distill_steps"]
        while d.step_count < q["distill_steps"]:
            d.train(min(chunk, q["distill_steps"] - d.step_count), progress=progress,
                    callback=keep_snapshot)
            # a copy for reading only: the checkpoint's own history is the one used
            atomic_write_bytes(ckpt_dir / "history.json", json.dumps(d.history).encode())
        missing = [k for k in snapshots if not snapshot_path(ckpt_dir, k).exists()]
        if missing:  # trained earlier without them: nothing to resume from
            raise FileNotFoundError(f"{ckpt_dir}: no eval_ema snapshot at updates {missing}; the "
                                    f"run was trained without them: delete the folder to retrain")
    return d, list(d.history)


def snapshot_path(ckpt_dir: Path, step: int) -> Path:
    """Where :func:`distill` keeps the evaluation EMA's weights after update ``step``."""
    return Path(ckpt_dir) / f"eval_ema-{step}.pt"
