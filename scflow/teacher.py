"""The teacher: a latent flow-matching model trained with Eq. 1 (Eq. 2 when class-conditional).

Trained once per configuration and cached (:mod:`scflow.cache`); every distillation notebook
loads the same cached teacher instead of retraining it. The weights kept are an EMA of the
trained ones (as LFM and most diffusion codebases do). What the teacher is trained with (or which
released checkpoint it is) is a :class:`TeacherConfig`; :func:`get_teacher` returns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scflow.cache import cached
from scflow.checks import flag, integer, number, text
from scflow.ema import ema_update_, frozen_copy, warmup_decay
from scflow.flow import flow_matching_loss
from scflow.nets import CONFIGS, VelocityNet, build_velocity_net


@dataclass(frozen=True)
class TeacherConfig:
    """The teacher: a named velocity net trained with Eq. 1 here, or LFM's released checkpoint.

    Validated on construction (an unknown architecture, or a class-conditional LFM teacher,
    is refused before any data is read).
    """

    arch: str = "unet_small"  # named velocity-net config (scflow.nets.CONFIGS)
    steps: int = 3000  # training steps (Eq. 1)
    batch_size: int = 64
    lr: float = 2e-4  # AdamW
    ema_decay: float = 0.999  # decay of the kept EMA weights (with diffusers' warm-up)
    checkpoint: str = ""  # '' = train here; else LFM's ADM checkpoint (celeba_f8_adm), converted
    class_cond: bool = False  # condition on the class label (Eq. 2)
    cond_drop: float = 0.1  # probability of dropping the condition (for CFG, Eq. 3)
    seed: int = 0

    def __post_init__(self) -> None:
        text("teacher_checkpoint", self.checkpoint)
        if not self.checkpoint and self.arch not in CONFIGS:
            raise ValueError(f"unknown teacher_arch {self.arch!r}; valid: {', '.join(CONFIGS)}")
        for name, value in (("teacher_steps", self.steps), ("teacher_batch", self.batch_size)):
            integer(name, value, ge=1)
        number("teacher_lr", self.lr, gt=0.0)
        number("teacher_ema", self.ema_decay, ge=0.0, lt=1.0)
        number("cond_drop", self.cond_drop, ge=0.0, le=1.0)
        flag("class_cond", self.class_cond)
        integer("seed", self.seed, ge=0)
        if self.checkpoint and self.class_cond:
            raise ValueError("teacher_checkpoint is LFM's unconditional CelebA-HQ teacher: "
                             "class_cond must be False")


def drop_condition(cond: Tensor, null: Tensor | int, p: float,
                   generator: torch.Generator) -> Tensor:
    """Replace each example's condition by ``null`` with probability ``p`` (CFG's null branch).

    Works for class labels (``cond`` (B,), ``null`` the null index) and text embeddings
    (``cond`` (B, L, D), ``null`` the empty prompt's (L, D)).
    """
    drop = (torch.rand(cond.shape[0], generator=generator) < p).to(cond.device)
    null = torch.as_tensor(null).to(cond).expand_as(cond)
    return torch.where(drop.reshape(-1, *([1] * (cond.ndim - 1))), null, cond)


def fit_flow(net: VelocityNet, z0: Tensor, *, steps: int, batch_size: int, lr: float,
             ema_decay: float, cond: Tensor | None = None, null: Tensor | int | None = None,
             cond_drop: float = 0.0, z1: Tensor | None = None, generator: torch.Generator,
             device: str = "cpu", desc: str = "teacher", progress: bool = False
             ) -> tuple[VelocityNet, list[float]]:
    """Train ``net`` in place with Eq. 1 (Eq. 2 with ``cond``), ``t ~ U[0, 1]``.

    Args:
        z0: data latents (N, C, H, W), or the generated ``z0_hat`` of a reflow round.
        cond: per-example conditions (labels or embeddings); dropped to ``null`` with
            probability ``cond_drop`` so that classifier-free guidance (Eq. 3) works.
        z1: ``None`` draws fresh Gaussian noise each step (flow matching); else the paired noise
            of reflow / rectified flow: example i always uses ``z1[i]``.

    Returns:
        The EMA of the trained weights (eval mode, no gradient) and the loss curve.
    """
    from scflow.progress import progress as progress_bar

    net = net.to(device).train().requires_grad_(True)
    ema = frozen_copy(net)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    g, losses = generator, []
    for step in progress_bar(range(1, steps + 1), desc=desc, disable=not progress):
        idx = torch.randint(0, z0.shape[0], (batch_size,), generator=g)
        noise = torch.randn(z0[idx].shape, generator=g) if z1 is None else z1[idx]
        t = torch.rand(batch_size, generator=g)
        c = None if cond is None else drop_condition(cond[idx], null, cond_drop, g)
        loss = flow_matching_loss(net, z0[idx].to(device), noise.to(device), t.to(device),
                                  None if c is None else c.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema_update_(ema, net, warmup_decay(step, ema_decay))  # no share of the random init
        losses.append(loss.item())
    return ema.eval(), losses


def train_teacher(latents: Tensor, labels: Tensor | None, *, arch: str, steps: int,
                  batch_size: int, lr: float, ema_decay: float, class_cond: bool = False,
                  cond_drop: float = 0.1, seed: int = 0, device: str = "cpu",
                  progress: bool = False) -> tuple[VelocityNet, list[float]]:
    """Build a named velocity net and train it with Eq. 1 (Eq. 2 if ``class_cond``)."""
    if class_cond and labels is None:
        raise ValueError("class_cond=True needs labels")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    num_classes = int(labels.max()) + 1 if class_cond else 0
    net = build_velocity_net(arch, sample_size=latents.shape[-1], channels=latents.shape[1],
                             num_classes=num_classes)
    return fit_flow(net, latents, steps=steps, batch_size=batch_size, lr=lr,
                    ema_decay=ema_decay, cond=labels if num_classes else None,
                    null=num_classes, cond_drop=cond_drop, generator=g, device=device,
                    progress=progress)


def check_teacher_source(cfg: TeacherConfig) -> None:
    """Fail in seconds, before any data or model is loaded, if the teacher cannot be had.

    With ``checkpoint`` set the file must exist (the error gives the download command).
    """
    if not cfg.checkpoint:
        return
    from scflow.adm import check_lfm_checkpoint

    check_lfm_checkpoint(cfg.checkpoint)


def teacher_cache_config(cfg: TeacherConfig, latent_key: Any) -> dict[str, Any]:
    """What a teacher cache entry depends on: its latent space (``latent_key``,
    :func:`scflow.autoencoder.latent_space_key`) and its own training parameters.

    A converted checkpoint depends on the file (path and size) and the ADM config instead of
    any training parameter. The key names are the notebook parameters' (those of the shipped
    artefacts' keys).
    """
    if cfg.checkpoint:
        from dataclasses import asdict

        from scflow import adm

        path = Path(cfg.checkpoint).expanduser()
        return {"kind": "teacher", "checkpoint": str(path),
                "bytes": path.stat().st_size if path.is_file() else None,
                "adm": asdict(adm.LFM_CELEBA_F8_ADM), "format": "lfm_adm",
                "latents": latent_key}
    # the architecture's definition, not just its name: editing CONFIGS invalidates the cache
    return {"kind": "teacher", "latents": latent_key,
            "arch_definition": CONFIGS[cfg.arch], "ema": "warmup",
            "teacher_arch": cfg.arch, "teacher_steps": cfg.steps,
            "teacher_batch": cfg.batch_size, "teacher_lr": cfg.lr, "teacher_ema": cfg.ema_decay,
            "class_cond": cfg.class_cond, "cond_drop": cfg.cond_drop, "seed": cfg.seed}


def get_teacher(cfg: TeacherConfig, latents: Tensor, labels: Tensor | None, latent_key: Any,
                device: str = "cpu", progress: bool = False) -> tuple[VelocityNet, Path, bool]:
    """The cached teacher of ``cfg`` on ``latents`` (trained on a miss). Frozen, eval mode.

    ``latent_key`` names the latent space (:func:`scflow.autoencoder.latent_space_key`). Returns
    ``(teacher, cache_dir, hit)``. The loss curve is stored beside the weights. With
    ``cfg.checkpoint`` set, LFM's ADM weights are converted (:mod:`scflow.adm`) and cached
    instead of training, with an empty loss curve.
    """
    if cfg.checkpoint:
        _check_checkpoint_latents(latents)  # also on a cache hit: the preset may have changed

    def build(d: Path) -> None:
        if cfg.checkpoint:
            net = _converted_teacher(cfg)
            net.save(d / "net")
            torch.save(torch.zeros(0), d / "losses.pt")
            return
        net, losses = train_teacher(
            latents, labels, arch=cfg.arch, steps=cfg.steps, batch_size=cfg.batch_size,
            lr=cfg.lr, ema_decay=cfg.ema_decay, class_cond=cfg.class_cond,
            cond_drop=cfg.cond_drop, seed=cfg.seed, device=device, progress=progress)
        net.cpu().save(d / "net")
        torch.save(torch.tensor(losses), d / "losses.pt")

    d, hit = cached("teacher", teacher_cache_config(cfg, latent_key), build)
    teacher = VelocityNet.load(d / "net").to(device).eval().requires_grad_(False)
    return teacher, d, hit


def _check_checkpoint_latents(latents: Tensor) -> None:
    """LFM's net takes the latents it was trained on (SD VAE at 256 px: 4x32x32)."""
    from scflow import adm

    cfg = adm.LFM_CELEBA_F8_ADM
    want = (cfg.in_channels, cfg.image_size, cfg.image_size)
    if tuple(latents.shape[1:]) != want:
        raise ValueError(f"teacher_checkpoint takes latents {want} (SD VAE at 256 px, scale "
                         f"0.18215); the preset's latents are {tuple(latents.shape[1:])}")


def _converted_teacher(cfg: TeacherConfig) -> VelocityNet:
    """LFM's checkpoint as a VelocityNet (its config looked up now, so tests can swap it)."""
    from scflow import adm

    check_teacher_source(cfg)
    return adm.load_lfm_teacher(cfg.checkpoint, adm.LFM_CELEBA_F8_ADM)


def load_losses(cache_dir: Path) -> Tensor:
    """The teacher's training-loss curve saved by :func:`get_teacher`."""
    return torch.load(Path(cache_dir) / "losses.pt")
