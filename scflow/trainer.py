"""The trainer of Algorithm 1: owns the four networks, the optimizers and the checkpoints.

The math of one update lives in :mod:`scflow.distill` (:func:`scflow.distill.compute_losses`);
this module applies it: one backward, one optimizer step, the two EMA updates and one
discriminator update per step, across several processes when launched with ``accelerate
launch`` / ``torchrun``. Network names as in :mod:`scflow.distill`'s docstring.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.distributed as dist
from accelerate import Accelerator
from torch import Tensor, nn

from scflow import provenance
from scflow.checkpoint import load_checkpoint, save_checkpoint
from scflow.compile import compile_net
from scflow.discriminator import LatentDiscriminator, discriminator_loss
from scflow.distill import (
    DistillConfig,
    LatentData,
    autocast_for,
    compute_losses,
    draw_inputs,
)
from scflow.ema import ema_update_, frozen_copy
from scflow.flow import guided
from scflow.progress import progress as progress_bar
from scflow.samplers import sample_batched
from scflow.schedule import eval_ema_decay_at, lr_factor
from scflow.speed import LossReader, SpeedConfig, apply_backends, to_channels_last

__all__ = ["Distiller"]

class Distiller:
    """Owns teacher, student, target, eval_ema, discriminator, optimizers; runs Algorithm 1.

    Args:
        teacher: the frozen velocity net (``v = teacher(z, t, cond)``); deep-copied into the
            student, never modified.
        data: the training latents (and conditions).
        cfg: hyperparameters and fidelity switches.
        null_cond: the null condition for CFG (default: ``teacher.null_cond`` if it has one).
        disc: a custom discriminator (default: :class:`LatentDiscriminator` when lambda_GAN > 0).
        device: "auto" (accelerate picks), "cpu" or "cuda".
        ckpt_dir: where :meth:`train` keeps ``last.pt`` (None: no checkpoints).
        compile: ``"no"`` or ``"torch"``: call teacher, student and target (training) and the
            sampled nets through ``torch.compile`` (:mod:`scflow.compile`; speed only).
        speed: opt-in speed switches (:class:`scflow.speed.SpeedConfig`; default: none).

    Several processes (``accelerate launch`` / ``torchrun``) split each global batch; gradients
    are averaged with one all-reduce per optimizer (explicit, so that the student's two forward
    passes and the R1 double-backward need no DDP tricks).
    """

    def __init__(self, teacher: nn.Module, data: LatentData, cfg: DistillConfig | None = None, *,
                 null_cond: object | None = None, disc: nn.Module | None = None,
                 device: str = "auto", ckpt_dir: str | None = None,
                 compile: str = "no", speed: SpeedConfig | None = None) -> None:
        self.cfg = cfg = cfg or DistillConfig()
        self.compile, self.speed = compile, speed or SpeedConfig()
        speed = self.speed
        compile_net(nn.Identity(), compile, speed.compile_mode)  # bad values fail before compute
        self._losses = LossReader(self, speed.log_every)  # checks ckpt_every against it
        # autocast is applied by this class (cfg.mixed_precision), not by accelerate: its state is
        # a per-process singleton, and several Distillers may live in one notebook
        self.accelerator = Accelerator(cpu=device == "cpu")
        dev = self.device = self.accelerator.device
        self.data, self.ckpt_dir, self.step_count = data, ckpt_dir, 0
        # saved with the weights (one atomic unit): the loss terms of every update, and which
        # code version and thread count trained which updates (scflow.provenance)
        self.history: list[dict[str, float]] = []
        self.lineage: list[provenance.Segment] = []
        self.teacher = teacher.to(dev).eval().requires_grad_(False)
        if null_cond is None:
            null_cond = getattr(teacher, "null_cond", None)
        self.teacher_v = guided(self.teacher, null_cond, cfg.guidance)  # Eq. 3 (g = 1: no CFG)
        self.student = copy.deepcopy(self.teacher).requires_grad_(True).train()  # theta <- phi
        self.target = frozen_copy(self.student)  # theta~ <- theta
        self.eval_ema = frozen_copy(self.student)
        self.disc: nn.Module | None = None
        if cfg.lambda_gan > 0:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed)
                self.disc = disc or LatentDiscriminator(data.latents.shape[1], cfg.disc_width,
                                                        cfg.fidelity.d_head)
            self.disc.to(dev).train()
        apply_backends(speed)
        if speed.channels_last:
            to_channels_last(self.teacher, self.student, self.target, self.eval_ema, self.disc)
        f, fast = cfg.fidelity, speed.adamw_kwargs()
        self.opt = torch.optim.AdamW(self.student.parameters(), lr=f.student_lr,
                                     weight_decay=cfg.weight_decay, **fast)
        self.d_opt = None if self.disc is None else torch.optim.AdamW(
            self.disc.parameters(), lr=f.disc_lr, weight_decay=cfg.weight_decay, **fast)
        self._autocast = autocast_for(cfg, dev)
        for m in (self.student, self.target, self.eval_ema, self.disc):
            self._broadcast(m)  # identical start on every process
        # what the update and sample() call: the modules above, or compiled wrappers sharing
        # their parameters (the modules stay what is optimised, EMA-updated and saved)
        self._calls = {name: compile_net(getattr(self, name), compile, speed.compile_mode)
                       for name in ("teacher", "student", "target", "eval_ema")}
        self._teacher_v_call = guided(self._calls["teacher"], null_cond, cfg.guidance)

    # --- one update ------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        """One update of Algorithm 1 (+ one discriminator update); returns the loss terms.

        With ``speed.log_every = N > 1`` the terms are read every N updates only: ``{}`` on the
        others (:class:`scflow.speed.LossReader`).
        """
        cfg, f, acc = self.cfg, self.cfg.fidelity, self.accelerator
        it = self.step_count + 1  # Algorithm 1's iter
        x = draw_inputs(self.data, cfg, it, acc.process_index, acc.num_processes, self.device,
                        non_blocking=self.speed.log_every > 1)
        with self._autocast():
            out = compute_losses(self._teacher_v_call, self._calls["student"],
                                 self._calls["target"], self.disc, x, cfg, it)
            d_parts: dict[str, Tensor] = {}
            if "gan" in out.terms:  # Eq. 7, D side, on sg(x1) of this update (R1 on z0)
                d_total, d_parts = discriminator_loss(self.disc, x.z0, out.x1, cfg.r1_gamma,
                                                      x.t, x.cond)
        names = list(out.terms) + ["total"] + list(d_parts)
        vals = torch.stack([*out.terms.values(), out.total.detach(), *d_parts.values()])
        logs = self._losses.before_update(it, names, acc.reduce(vals.float(), "mean"))
        lr_scale = lr_factor(it, cfg.total_steps, cfg.lr_schedule)  # 1 for the code's constant
        self.opt.zero_grad(set_to_none=True)
        out.total.backward()  # Alg. 1: one backward of L_distill
        self._allreduce_grads(self.student)
        _set_lr(self.opt, f.student_lr * lr_scale)
        self.opt.step()  # Alg. 1: theta <- theta - eta grad L_distill
        ema_update_(self.target, self.student, cfg.target_decay)  # Alg. 1: theta~ <- mu theta~ + ...
        ema_update_(self.eval_ema, self.student,  # evaluation EMA (code), optional warm-up
                    eval_ema_decay_at(it, f.eval_decay, cfg.eval_ema_warmup))
        if d_parts:  # one discriminator update per student update
            _set_lr(self.d_opt, f.disc_lr * lr_scale)
            self.d_opt.zero_grad(set_to_none=True)
            d_total.backward()
            self._allreduce_grads(self.disc)
            self.d_opt.step()
        self.step_count = it
        provenance.extend_lineage(self.lineage, it)
        logs = self._losses.after_update(it, logs)  # {} between reads with speed.log_every > 1
        if logs:
            self.history.append({"step": it, **logs})
        return logs

    def train(self, steps: int, progress: bool = False,
              callback: Callable[[int, dict[str, float]], None] | None = None,
              total: int | None = None) -> list[dict[str, float]]:
        """Run ``steps`` more updates; checkpoint to ``ckpt_dir/last.pt`` periodically and at the end.

        ``callback(step, logs)`` follows every update. The progress bar counts updates
        "k / total" (default: this call's last update). On a non-finite loss the error
        propagates and ``last.pt`` stays the last good state. Returns the loss terms of these
        updates (:attr:`history` holds every update's).
        """
        start = len(self.history)
        bar = progress_bar(steps, desc="distill", initial=self.step_count,
                           total=total or self.step_count + steps,
                           disable=not progress or not self.accelerator.is_main_process)
        for _ in bar:
            logs = self.train_step()
            if logs:  # every update, or every speed.log_every-th
                if callback is not None:
                    callback(self.step_count, logs)
                bar.set_postfix(cd=f"{logs['cd']:.4f}", refresh=False)
            every = self.cfg.ckpt_every
            if self.ckpt_dir and every and self.step_count % every == 0:
                self.save()
        logs = self._read_losses()  # speed.log_every > 1: the updates since the last read
        if logs and callback is not None:
            callback(self.step_count, logs)
        if self.ckpt_dir and steps and not (self.cfg.ckpt_every
                                            and self.step_count % self.cfg.ckpt_every == 0):
            self.save()
        provenance.note_lineage(self.lineage)  # for the results this process writes
        return self.history[start:]

    # --- sampling and persistence ----------------------------------------------------------
    def sample(self, z1: Tensor, nfe: int, cond: Tensor | None = None, net: str = "eval_ema",
               batch_size: int = 256) -> Tensor:
        """Deterministic Euler samples (:func:`scflow.samplers.sample_batched`) of one net."""
        nets = {"eval_ema": self._calls["eval_ema"], "student": self._calls["student"],
                "target": self._calls["target"], "teacher": self._teacher_v_call}
        if net not in nets:
            raise ValueError(f"net must be one of {list(nets)} (got {net!r})")
        cond = None if cond is None else cond.to(self.device)
        with self._autocast():
            out = sample_batched(nets[net], z1.to(self.device), nfe, cond, batch_size)
        return out.float()

    def save(self, path: str | None = None) -> str:
        """Atomic checkpoint (default ``ckpt_dir/last.pt``), written by the main process."""
        path = path or f"{self.ckpt_dir}/last.pt"
        self._read_losses()  # only checked updates are saved
        if self.accelerator.is_main_process:
            save_checkpoint(self, path)
        self.accelerator.wait_for_everyone()
        return path

    def resume(self, path: str, allow_other_code: bool | None = None) -> int:
        """Continue exactly where ``path`` stopped (teacher untouched); returns the step.

        Says so on stdout (the run's log), so that a resumed run is never mistaken for a
        fresh one. A checkpoint trained by other code is refused unless ``allow_other_code``
        (default: ``$SCFLOW_ALLOW_OTHER_CODE``; :func:`scflow.checkpoint.load_checkpoint`).
        """
        step = load_checkpoint(self, path, allow_other_code=allow_other_code)
        self._losses.discard()  # updates not yet checked were replaced
        if self.accelerator.is_main_process:
            print(f"resumed from update {step} (checkpoint {path})", flush=True)
        return step

    def _read_losses(self) -> dict[str, float]:
        """With ``speed.log_every > 1``: read and check the pending updates (history gets the
        last one's losses); ``{}`` when none is pending (always, by default)."""
        logs = self._losses.flush()
        if logs:
            self.history.append({"step": self.step_count, **logs})
        return logs

    # --- multi-process helpers ---------------------------------------------------------------
    def _broadcast(self, module: nn.Module | None) -> None:
        if module is None or self.accelerator.num_processes == 1:
            return
        for p in module.state_dict().values():
            dist.broadcast(p.data, src=0)

    def _allreduce_grads(self, module: nn.Module) -> None:
        world = self.accelerator.num_processes
        if world == 1:
            return
        params = [p for p in module.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p))
            offset += n


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """The learning rate of this update: a pure function of the update index (no scheduler
    state to save or restore on resume)."""
    for group in opt.param_groups:
        group["lr"] = lr
