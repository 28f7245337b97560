"""What every notebook shares: data, latent codec, latents, the cached teacher; and the
resumable, cached distillation of one student.

``prepare(params)`` trains nothing that is already cached, so notebooks 02+ start in seconds once
notebook 01 (or any earlier run with the same configuration) has trained the autoencoder and
the teacher. A student (Algorithm 1, :class:`scflow.trainer.Distiller`) keeps its checkpoints
in the cache entry :func:`student_dir` names, so :func:`train_resumable` continues a killed run
and returns a finished one at once.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from scflow.data import ImageSet, load_images
from scflow.distill import DistillConfig, LatentData
from scflow.nets import VelocityNet
from scflow.repro.configs import autoencoder_config, data_config, teacher_config
from scflow.repro.presets import preset_values
from scflow.teacher import check_teacher_source, get_teacher, teacher_cache_config

if TYPE_CHECKING:  # the trainer imports accelerate: not needed to plan or check a run
    from scflow.trainer import Distiller


@dataclass
class Setup:
    """The shared state of an experiment (see :func:`prepare`)."""

    data: ImageSet
    codec: LatentCodec
    latents: Tensor
    teacher: VelocityNet
    teacher_dir: Path
    teacher_key: dict[str, Any]
    """What the teacher's cache entry depends on; every student's cache key includes it."""
    class_cond: bool
    device: str
    cache_hits: dict[str, bool]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.latents.shape[1:])

    @property
    def train_data(self) -> LatentData:
        """The students' training latents, with the labels when the teacher is class-conditional."""
        return LatentData(self.latents, self.data.labels if self.class_cond else None)


class NotReadyError(RuntimeError):
    """Files, hardware or settings a run needs are missing (raised before any compute)."""


def preflight(params: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Check, before any compute, everything a run with parameters ``params`` needs from outside.

    ``params`` holds the values the run's shared parts use (the preset's, with the run's own
    parameters over them). Returns ``(problems, warnings)``: every missing item at once, each
    with what to do, and the choices that run but measure something else (digits-classifier
    FID on images that are not the digits).
    """
    from scflow.data import image_files
    from scflow.pretrained import WeightsUnavailableError, resolve_pretrained

    problems: list[str] = []
    warnings: list[str] = []
    if params.get("device") == "cuda" and not torch.cuda.is_available():
        problems.append("CUDA GPU: device='cuda' but this machine has none; run on a GPU machine, "
                        "or set device: cpu (or auto) / use --preset mini")
    if params.get("dataset") == "folder":
        if not params.get("data_dir"):
            problems.append("data: dataset='folder' needs data_dir (a folder of images)")
        else:
            try:
                n = len(image_files(params["data_dir"], params.get("data_limit") or None))
            except FileNotFoundError as err:
                problems.append(f"data: {err}; put the images there (CelebA-HQ 256: see the "
                                f"README, 'Real data and weights') or set data_dir")
            else:
                if n < MIN_IMAGES:
                    problems.append(f"data: {n} image(s) under {params['data_dir']}"
                                    f"{' (data_limit)' if params.get('data_limit') else ''}; a "
                                    f"run needs at least {MIN_IMAGES} (precision / recall "
                                    f"compare each image with its 3 nearest): add images")
        if params.get("class_cond"):
            problems.append("class_cond=True needs class labels, and a folder dataset has none: "
                            "set class_cond: false")
        if params.get("fid_backend") == "digits":
            warnings.append("fid_backend='digits' on a folder dataset: FID then uses the features "
                            "of a handwritten-digits classifier, which say little about other "
                            "images; use fid_backend: inception for photos")
    if params.get("vae"):
        try:
            resolve_pretrained(params["vae"], what="the SD VAE (AutoencoderKL)", param="vae")
        except WeightsUnavailableError as err:
            problems.append(f"VAE weights: {err}")
    if params.get("teacher_checkpoint"):
        from scflow.adm import check_lfm_checkpoint

        try:
            check_lfm_checkpoint(params["teacher_checkpoint"])
        except WeightsUnavailableError as err:
            problems.append(f"teacher weights: {err}")
        if params.get("class_cond"):
            problems.append("teacher_checkpoint is LFM's unconditional teacher: set class_cond: false")
    if params.get("fid_backend") == "inception":
        from scflow.metrics.features import find_inception_weights

        try:
            find_inception_weights()
        except WeightsUnavailableError as err:
            problems.append(f"Inception weights: {err}")
    problems += shipped_manifest_problems()
    problems += [f"{what} folder: {x}" for what, x in (("cache", unwritable(cache_root())),
                                                       ("results", _results_problem(params))) if x]
    return problems, warnings


MIN_IMAGES = 4
"""Fewest training images a run accepts: precision / recall (k = 3) need k + 1 real images."""


def _results_problem(params: Mapping[str, Any]) -> str | None:
    """Why the run could not write its CSV and figures (checked before it trains)."""
    from scflow.repro.results import output_dir

    try:
        return unwritable(output_dir(params.get("preset", "mini")))
    except ValueError as err:  # $SCFLOW_RESULTS names a file
        return str(err)


def check_ready(params: Mapping[str, Any], where: str = "this run") -> None:
    """:func:`preflight`; raise :class:`NotReadyError` listing every problem, warn otherwise."""
    import warnings as _warnings

    problems, warns = preflight(params)
    for w in warns:
        _warnings.warn(f"{where}: {w}", stacklevel=2)
    if problems:
        raise NotReadyError(f"{where} cannot start; {len(problems)} missing (nothing was "
                            f"computed):\n" + "\n".join(f"- {x}" for x in problems))


def pin_threads(n: int) -> None:
    """Run torch and the BLAS / OpenMP pools of this process on ``n`` CPU threads (``threads``).

    The runner gives each notebook one thread; a kernel pinned the same way (JupyterLab's Run
    All) computes the committed numbers, where a reduction split over another number of threads
    may differ in its last bits.
    """
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(limits=n)


def resolve_device(device: str) -> str:
    """'auto' -> what accelerate picks on this machine (cuda/mps/cpu); else as given."""
    if device != "auto":
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device='cuda' requested but no CUDA GPU is available; use 'auto' or 'cpu'")
        return device
    from accelerate import PartialState

    return str(PartialState().device)


def prepare(params: Mapping[str, Any], progress: bool = True) -> Setup:
    """Data -> autoencoder (cached) -> latents (cached) -> teacher (cached) for parameters ``params``."""
    data_cfg, ae_cfg, teacher_cfg = data_config(params), autoencoder_config(params), teacher_config(params)
    check_teacher_source(teacher_cfg)  # a missing teacher checkpoint fails before the data is read
    device = resolve_device(params["device"])
    data = load_images(data_cfg)
    codec, ae_hit = get_codec(ae_cfg, data_cfg, data.images, progress=progress)
    codec.vae.to(device)
    space = latent_space_key(ae_cfg, data_cfg)

    def build_latents(folder: Path) -> None:
        torch.save(codec.encode(data.images), folder / "latents.pt")

    lat_cfg = {"kind": "latents", "codec": space, "latent_scale": ae_cfg.latent_scale,
               "n": len(data)}
    lat_dir, lat_hit = cached("latents", lat_cfg, build_latents)
    latents = load_cached_tensor(lat_dir / "latents.pt")
    teacher, tdir, t_hit = get_teacher(teacher_cfg, latents, data.labels, space, device=device,
                                       progress=progress)
    return Setup(data, codec, latents, teacher, tdir, teacher_cache_config(teacher_cfg, space),
                 teacher_cfg.class_cond, device,
                 {"autoencoder": ae_hit, "latents": lat_hit, "teacher": t_hit})


def load_cached_tensor(path: Path) -> Tensor:
    """``torch.load`` of a file in a cache entry; a damaged one is named with what to do."""
    try:
        return torch.load(path)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise RuntimeError(f"{path} is truncated or corrupt ({type(err).__name__}): delete the "
                           f"cache entry {path.parent} (it is rebuilt on the next run)") from None


def upstream_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """What notebooks 02-06 share with notebook 01: the preset's data, autoencoder and teacher.

    Those values come from the preset (so every student distils the same cached teacher); the
    run's own ``device`` is kept, so that the teacher, the student and the evaluation all run
    where the run asked.
    """
    return {**preset_values(params["preset"]), "device": params["device"]}


def make_extractor(params: Mapping[str, Any], device: str = "cpu") -> Any:
    """The FID feature extractor a run asked for: digits classifier (cached) or Inception.

    ``params`` must be the run's own parameters, not the preset's: its ``fid_backend`` is
    also the CSV's ``feature_backend`` label.
    """
    from scflow.metrics import get_feature_extractor

    if params["fid_backend"] == "digits":
        # trained on the run's digits (notebook 01 has a `dataset`; the others take the preset's);
        # a folder dataset has no labels: the classifier of the embedded digits then
        data = params["dataset"] if "dataset" in params else preset_values(params["preset"])["dataset"]
        return get_feature_extractor("digits", device=device, steps=params["classifier_steps"],
                                     dataset="mnist" if data == "mnist" else "digits")
    return get_feature_extractor("inception", device=device)


def student_dir(setup: Setup, cfg: DistillConfig, steps: int) -> Path:
    """The cache entry of the student Algorithm 1 trains from ``setup``'s teacher with ``cfg`` for
    ``steps`` updates: where its checkpoints (``last.pt``) and loss history live.

    ``compile`` (speed only) is not part of the key: eager and compiled runs share students.
    """
    key = {"kind": "distill", "teacher": setup.teacher_key, "cfg": cfg.as_dict(), "steps": steps}
    folder = entry_dir("distill", key)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "config.json",
                       json.dumps(key, sort_keys=True, indent=1, default=str).encode())
    return folder


def train_resumable(distiller: Distiller, steps: int, progress: bool = True,
                    snapshots: Sequence[int] = ()) -> list[dict[str, float]]:
    """Run Algorithm 1 on ``distiller`` until update ``steps``; return the loss terms of every update.

    ``distiller.ckpt_dir`` (:func:`student_dir`) holds ``last.pt`` (every ``ckpt_every`` updates),
    which carries the loss history (``history.json`` beside it is a copy for reading, never read
    back): a killed run continues from its last checkpoint, and a finished one returns at once;
    either only if the same code wrote it (else refused, :func:`scflow.checkpoint.load_checkpoint`).
    One progress bar counts all updates ("k / steps"). ``snapshots`` lists updates after which
    the evaluation EMA's weights are also kept (:func:`snapshot_path`), so one run yields a whole
    training-budget curve. A parallel run training the same student waits, then finds it trained.
    """
    ckpt_dir = Path(distiller.ckpt_dir)
    bad = [k for k in snapshots if not 1 <= k <= steps]
    if bad:
        raise ValueError(f"snapshots {bad} outside 1..distill_steps={steps}")
    with entry_lock(ckpt_dir):
        if (ckpt_dir / "last.pt").exists():
            distiller.resume(str(ckpt_dir / "last.pt"))  # with its history; refused if other code

        def copy_history() -> None:  # for reading only: the checkpoint's own history is used
            atomic_write_bytes(ckpt_dir / "history.json", json.dumps(distiller.history).encode())

        def record(step: int, logs: dict[str, float]) -> None:
            if step in snapshots:
                buf = io.BytesIO()
                torch.save(distiller.eval_ema.state_dict(), buf)
                atomic_write_bytes(snapshot_path(ckpt_dir, step), buf.getvalue())
            if distiller.cfg.ckpt_every and step % distiller.cfg.ckpt_every == 0:
                copy_history()

        if distiller.step_count < steps:
            distiller.train(steps - distiller.step_count, progress=progress, callback=record,
                            total=steps)
            copy_history()
        missing = [k for k in snapshots if not snapshot_path(ckpt_dir, k).exists()]
        if missing:  # trained earlier without them: nothing to resume from
            raise FileNotFoundError(f"{ckpt_dir}: no eval_ema snapshot at updates {missing}; the "
                                    f"run was trained without them: delete the folder to retrain")
    return list(distiller.history)


def distill(setup: Setup, cfg: DistillConfig, steps: int, *, compile: str = "no",
            progress: bool = True, snapshots: Sequence[int] = ()
            ) -> tuple[Distiller, list[dict[str, float]]]:
    """Algorithm 1 from ``setup``'s teacher with ``cfg`` for ``steps`` updates, resumable and cached.

    A :class:`scflow.trainer.Distiller` checkpointing into :func:`student_dir`, trained by
    :func:`train_resumable`. Returns ``(distiller, history)``.
    """
    from scflow.trainer import Distiller

    if cfg.lr_schedule != "constant" and cfg.total_steps != steps:
        raise ValueError(f"lr_schedule {cfg.lr_schedule!r} ends at update {cfg.total_steps}, but "
                         f"the run trains {steps} updates: build the config with distill_steps "
                         f"{steps}")
    distiller = Distiller(setup.teacher, setup.train_data, cfg, device=setup.device,
                          compile=compile, ckpt_dir=str(student_dir(setup, cfg, steps)))
    return distiller, train_resumable(distiller, steps, progress=progress, snapshots=snapshots)


def snapshot_path(ckpt_dir: Path, step: int) -> Path:
    """Where :func:`train_resumable` keeps the evaluation EMA's weights after update ``step``."""
    return Path(ckpt_dir) / f"eval_ema-{step}.pt"
