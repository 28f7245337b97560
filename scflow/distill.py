"""Self-Corrected Flow distillation: the training step of Algorithm 1 (the math of one update).

The trainer that owns the networks and optimizers and runs these steps is
:class:`scflow.trainer.Distiller`.

The four networks, named the same everywhere in this project:

- ``teacher`` (v_phi): the frozen pretrained flow-matching net; never trained, never saved in a
  distillation checkpoint, never replaced. With ``guidance > 1`` it is called with
  classifier-free guidance (Eq. 3); the other nets get the condition only.
- ``student`` (v_theta): the net being trained; initialised as a deep copy of the teacher
  (Algorithm 1: ``theta <- phi``).
- ``target`` (v_theta~): exponential moving average of the student (decay mu, 0.9), no gradient;
  gives the consistency targets of L_CD and L_BI.
- ``eval_ema``: a second, slower EMA of the student used for sampling and evaluation (the
  authors' code; the paper has one EMA). Starts from the student, not from random weights.

Per update (:func:`compute_losses`, then :meth:`scflow.trainer.Distiller.train_step`):
``L = L_CD + [it >= N_GAN] l_GAN L_GAN + [it >= N_RF] l_RF L_RF + [it >= N_BI] l_BI L_BI``,
one backward, one optimizer step, the two EMA updates, one discriminator update.
``it`` counts updates from 1 like Algorithm 1's ``iter``. Network calls that can share a forward
pass are batched: teacher 1 call (B), target 1 call (2B: z_s and z_k), student 1 call (2B: z_t and
z1) and 1 call (B: z_hat, which needs x1 first). Terms whose weight is 0 or that are still in
warm-up are not computed.

Every random number of update ``it`` (data indices, z1, t, U, U') is drawn for the GLOBAL batch
from a generator seeded by ``(seed, it)``; each process takes its slice. So a resumed run and a
run on several processes see exactly the draws of one uninterrupted single-process run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from scflow.checks import integer, number
from scflow.discriminator import Discriminator, generator_loss
from scflow.fidelity import FidelityConfig, make_fidelity
from scflow.flow import VelocityFn, f_theta, interpolant
from scflow.losses import bi_loss, cd_loss, late_mask, reflow_input, rf_loss
from scflow.schedule import LR_SCHEDULES
from scflow.timeskip import sample_times, time_skip

TERMS = ("cd", "gan", "rf", "bi")


class NonFiniteLossError(FloatingPointError):
    """A loss term was NaN or infinite; nothing of that update was applied."""

    def __init__(self, step: int, term: str, value: float) -> None:
        super().__init__(f"step {step}: loss term {term!r} is {value} (not finite); "
                         "the update was not applied, the last checkpoint is still good")
        self.step, self.term, self.value = step, term, value


@dataclass(frozen=True)
class DistillConfig:
    """Hyperparameters of Algorithm 1 beyond the paper-vs-code switches (``fidelity``).

    Built from a notebook's parameters by :func:`scflow.repro.configs.distill_config`.
    """

    fidelity: FidelityConfig = field(default_factory=make_fidelity)
    lambda_gan: float = 0.1
    lambda_rf: float = 0.1
    lambda_bi: float = 0.1
    t_trunc: float = 0.4  # Eq. 8 (the authors' T2I scripts: 0.1)
    t_skip: float = 0.1  # Algorithm 2
    warmup_gan: int = 0  # N_GAN, N_RF, N_BI of Algorithm 1 (the authors' T2I scripts: 500, 0, 500)
    warmup_rf: int = 1000
    warmup_bi: int = 1000
    target_decay: float = 0.9  # mu of the target EMA (paper and code)
    r1_gamma: float = 1.0
    batch_size: int = 64  # GLOBAL batch, split evenly over processes
    guidance: float = 1.0  # CFG scale of the teacher (Eq. 3); 1 = none
    disc_width: int = 64
    weight_decay: float = 0.0  # AdamW, both optimizers (code: 0)
    seed: int = 0
    mixed_precision: str = "no"  # "no" | "bf16" (fp16 would need loss scaling: not supported)
    ckpt_every: int = 0  # write <ckpt_dir>/last.pt every this many updates (0: end of train())
    lr_schedule: str = "constant"  # scflow.schedule.lr_factor; the code's: constant
    total_steps: int = 0  # the run's length, which a decaying lr_schedule ends at (0: constant only)
    eval_ema_warmup: bool = False  # eval EMA decay min(decay, (1 + it) / (10 + it)) (scflow.schedule)

    def __post_init__(self) -> None:
        if not isinstance(self.fidelity, FidelityConfig):
            raise ValueError("fidelity must be a FidelityConfig (use make_fidelity)")
        for name in ("lambda_gan", "lambda_rf", "lambda_bi", "r1_gamma", "weight_decay"):
            number(name, getattr(self, name), ge=0.0)
        for name in ("t_trunc", "t_skip"):
            number(name, getattr(self, name), ge=0.0, le=1.0)
        number("target_decay", self.target_decay, ge=0.0, lt=1.0)
        number("guidance", self.guidance, ge=1.0)
        for name, lo in (("batch_size", 1), ("disc_width", 1), ("seed", 0), ("ckpt_every", 0),
                         ("warmup_gan", 0), ("warmup_rf", 0), ("warmup_bi", 0)):
            integer(name, getattr(self, name), ge=lo)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES} (got {self.lr_schedule!r})")
        integer("total_steps", self.total_steps, ge=0)
        if self.lr_schedule != "constant" and self.total_steps < 1:
            raise ValueError(f"lr_schedule {self.lr_schedule!r} decays to 0 at the run's last "
                             f"update: it needs total_steps >= 1 (the run's distill_steps)")
        if self.mixed_precision not in ("no", "bf16"):
            raise ValueError(f"mixed_precision must be 'no' or 'bf16' (got {self.mixed_precision!r})")

    def as_dict(self) -> dict:
        return asdict(self)


# --- Algorithm 1's warm-up gating: a pure function of the update index --------------------------
def warmup_active(it: int, warmup: int) -> bool:
    """Algorithm 1: ``if iter >= N_X`` (``it`` counts updates from 1)."""
    return it >= warmup


def loss_weights(it: int, cfg: DistillConfig) -> dict[str, float]:
    """Weight of each term at update ``it`` (0 = not computed): CD always 1."""
    return {"cd": 1.0,
            "gan": cfg.lambda_gan if warmup_active(it, cfg.warmup_gan) else 0.0,
            "rf": cfg.lambda_rf if warmup_active(it, cfg.warmup_rf) else 0.0,
            "bi": cfg.lambda_bi if warmup_active(it, cfg.warmup_bi) else 0.0}


# --- the inputs of one update -----------------------------------------------------------------
@dataclass
class LatentData:
    """Training latents z0 (N, C, H, W) in memory, with optional conditions (N, ...)."""

    latents: Tensor
    cond: Tensor | None = None

    def __len__(self) -> int:
        return self.latents.shape[0]

    def take(self, idx: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.latents[idx], None if self.cond is None else self.cond[idx]


@dataclass
class StepInputs:
    """Everything random in one update (Algorithm 1's draws and Algorithm 2's uniforms)."""

    z0: Tensor
    z1: Tensor
    t: Tensor
    u_s: Tensor
    u_k: Tensor
    cond: Tensor | None = None


def draw_inputs(data: LatentData, cfg: DistillConfig, it: int, rank: int = 0, world: int = 1,
                device: torch.device | str = "cpu", non_blocking: bool = False) -> StepInputs:
    """The draws of update ``it`` for the global batch, seeded by ``(seed, it)``; this rank's slice.

    ``non_blocking``: copy them to a GPU from pinned memory without waiting for the GPU (same
    values; the host does not synchronise). Ignored for a CPU device.
    """
    b = cfg.batch_size
    if b % world:
        raise ValueError(f"batch_size {b} is not divisible by the {world} processes")
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + it)
    idx = torch.randint(len(data), (b,), generator=g)  # Alg. 1: x0 ~ p0
    z1 = torch.randn((b, *data.latents.shape[1:]), generator=g)  # Alg. 1: z1 ~ N(0, I)
    f = cfg.fidelity
    t = sample_times(b, f.time_sampling, f.grid_points, generator=g)  # Alg. 1: i ~ U[1, N]
    u_s, u_k = torch.rand(b, generator=g), torch.rand(b, generator=g)  # Alg. 2: U, U'
    sl = slice(rank * b // world, (rank + 1) * b // world)
    z0, cond = data.take(idx[sl])
    if non_blocking and torch.device(device).type == "cuda":
        dev = lambda x: None if x is None else x.pin_memory().to(device, non_blocking=True)  # noqa: E731
    else:
        dev = lambda x: None if x is None else x.to(device)  # noqa: E731
    return StepInputs(z0=dev(z0), z1=dev(z1[sl]), t=dev(t[sl]), u_s=dev(u_s[sl]),
                      u_k=dev(u_k[sl]), cond=dev(cond))


# --- the losses of one update -----------------------------------------------------------------
@dataclass
class StepLosses:
    total: Tensor  # the L of Algorithm 1 (with grad)
    terms: dict[str, Tensor]  # unweighted terms that were computed
    x1: Tensor | None  # sg(f_theta(z1, 1)) for the discriminator update (None if unused)


def _twice(c: Tensor | None) -> Tensor | None:
    return None if c is None else torch.cat([c, c])


def compute_losses(teacher: VelocityFn, student: nn.Module, target: nn.Module,
                   disc: Discriminator | None, x: StepInputs, cfg: DistillConfig, it: int
                   ) -> StepLosses:
    """Algorithm 1's loss at update ``it`` (gradients reach the student only)."""
    f, w = cfg.fidelity, loss_weights(it, cfg)
    use_gan, use_rf, use_bi = w["gan"] > 0, w["rf"] > 0, w["bi"] > 0
    b = x.z0.shape[0]
    ts = time_skip(x.t, cfg.t_skip, x.u_s, x.u_k)  # Algorithm 2: t_s = t - d_s, t_k = t + d_k
    z_t = interpolant(x.z0, x.z1, x.t)  # Alg. 1: z_t = (1 - t) z0 + t z1
    bc = lambda s: s.reshape(-1, 1, 1, 1)  # noqa: E731
    with torch.no_grad():
        v = teacher(z_t, x.t, x.cond)  # teacher step: v = v_phi(z_t, t[, CFG]) -- ONE call
        z_s = z_t - bc(ts.d_s) * v  # Euler step towards data (L_CD)
        if use_bi:  # Euler step towards noise (L_BI), same velocity; target on both: ONE call
            z_k = z_t + bc(ts.d_k) * v
            y = f_theta(target, torch.cat([z_s, z_k]), torch.cat([ts.t_s, ts.t_k]), _twice(x.cond))
            y_s, y_k = y[:b], y[b:]  # Eq. 8: f_target(z_s, t_s); Eq. 10: f_target(z_k, t_k)
        else:
            y_s = f_theta(target, z_s, ts.t_s, x.cond)
    if use_gan or use_rf:  # student f(z_t, t) and x1 = f(z1, 1) in ONE call
        out = f_theta(student, torch.cat([z_t, x.z1]), torch.cat([x.t, torch.ones_like(x.t)]),
                      _twice(x.cond))
        f_t, x1 = out[:b], out[b:]
    else:
        f_t, x1 = f_theta(student, z_t, x.t, x.cond), None
    late = late_mask(x.t, ts.t_s, cfg.t_trunc, f.trunc_rule)  # Eq. 8: truncation (paper | code)
    terms = {"cd": cd_loss(f_t, y_s, x.z0, late, f.distance, f.huber_c)}  # Eq. 4/6/8
    total = terms["cd"]
    if use_gan:  # Eq. 7, student side: softplus(-D(x1)), x1 with gradient, D frozen
        assert disc is not None and x1 is not None, "L_GAN needs a discriminator"
        with _frozen(disc):
            terms["gan"] = generator_loss(disc, x1, x.t, x.cond)
        total = total + w["gan"] * terms["gan"]
    if use_rf:  # Eq. 9: z_hat = (1 - t) sg(x1) + t z1; L_RF = ||sg(x1) - f_theta(z_hat, t)||^2
        assert x1 is not None
        f_hat = f_theta(student, reflow_input(x1, x.z1, x.t), x.t, x.cond)
        terms["rf"] = rf_loss(x1, f_hat)
        total = total + w["rf"] * terms["rf"]
    if use_bi:  # Eq. 10: d(f_theta(z_t, t), f_target(z_k, t_k)), same student output as L_CD
        terms["bi"] = bi_loss(f_t, y_k, f.distance, f.huber_c)
        total = total + w["bi"] * terms["bi"]
    return StepLosses(total=total, terms=terms, x1=None if x1 is None else x1.detach())


class _frozen(AbstractContextManager):
    """Switch off a module's parameter gradients for the duration (inputs keep theirs)."""

    def __init__(self, module: object) -> None:
        self.params = list(module.parameters()) if isinstance(module, nn.Module) else []
        self.flags = [p.requires_grad for p in self.params]

    def __enter__(self) -> None:
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for p, flag in zip(self.params, self.flags, strict=True):
            p.requires_grad_(flag)


def check_finite(it: int, values: dict[str, float]) -> None:
    """Raise :class:`NonFiniteLossError` naming the update and the first bad term."""
    for name, v in values.items():
        if not math.isfinite(v):
            raise NonFiniteLossError(it, name, v)


def autocast_for(cfg: DistillConfig, device: torch.device) -> Callable[[], AbstractContextManager]:
    """Mixed precision of the network calls (bf16 autocast, or nothing)."""
    if cfg.mixed_precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext
