"""Opt-in speed switches of the distillation update (GPU-oriented); all off by default.

None of them changes the math of Algorithm 1: with a switch on, the losses equal the default
step's up to floating-point rounding (tested on the CPU), and with every switch off the trainer
computes exactly what it computed before they existed. They are not part of
:class:`scflow.distill.DistillConfig` (so not of a checkpoint's config or a run's hash).

- ``channels_last``: every net (teacher, student, target, eval_ema, discriminator) in the
  NHWC memory format (convolutions without layout transposes on tensor cores); the teacher
  passed in is converted in place, like its move to the device.
- ``optimizer``: AdamW's implementation: ``"default"`` (torch's choice: a for-loop on the CPU,
  ``foreach`` on a GPU), ``"foreach"`` (one kernel per op over all tensors) or ``"fused"`` (one
  kernel for the whole step).
- ``log_every``: read the losses on the host every N updates instead of after each one (no host
  synchronisation inside an update; the inputs are copied to the GPU without blocking). The
  non-finite check then runs at those reads, over every update since the last one; a non-finite
  loss rolls the distiller back to the last checked update and raises
  :class:`scflow.distill.NonFiniteLossError` naming the first bad update (a checkpoint is only
  written after a check). Costs one device copy of the trained state. ``1``: every update,
  checked before it is applied (the default).
- ``compile_mode``: the ``torch.compile`` mode of ``compile="torch"`` (``"default"``,
  ``"max-autotune"``, ``"max-autotune-no-cudagraphs"``, ``"reduce-overhead"``: CUDA graphs).
- ``cudnn_benchmark``, ``tf32``: cuDNN autotuning, and TF32 matrix units for fp32 matmuls
  (``torch.set_float32_matmul_precision("high")``; cuDNN's fp32 convolutions use TF32 by
  default). CUDA only; process-wide, switched on and never off by a Distiller.

bf16 autocast is :attr:`scflow.distill.DistillConfig.mixed_precision` (it covers every network
call of the update: teacher, target, student and discriminator; the weights stay fp32).
Attention already runs through ``scaled_dot_product_attention`` (diffusers' ``AttnProcessor2_0``,
flash / memory-efficient kernels on a GPU); there is no switch for it.
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from scflow.distill import NonFiniteLossError, check_finite

OPTIMIZERS = ("default", "foreach", "fused")
COMPILE_MODES = ("default", "max-autotune", "max-autotune-no-cudagraphs", "reduce-overhead")

__all__ = ["COMPILE_MODES", "OPTIMIZERS", "LossReader", "SpeedConfig", "apply_backends",
           "to_channels_last"]


@dataclass(frozen=True)
class SpeedConfig:
    """The speed switches (module docstring); the defaults leave the update as it always was."""

    channels_last: bool = False
    optimizer: str = "default"
    log_every: int = 1
    compile_mode: str = "default"
    cudnn_benchmark: bool = False
    tf32: bool = False

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"speed optimizer must be one of {OPTIMIZERS} (got {self.optimizer!r})")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"speed compile_mode must be one of {COMPILE_MODES} "
                             f"(got {self.compile_mode!r})")
        if isinstance(self.log_every, bool) or not isinstance(self.log_every, int) \
                or self.log_every < 1:
            raise ValueError(f"speed log_every must be an integer >= 1 (got {self.log_every!r})")
        for name in ("channels_last", "cudnn_benchmark", "tf32"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"speed {name} must be True or False "
                                 f"(got {getattr(self, name)!r})")

    def adamw_kwargs(self) -> dict[str, bool]:
        """AdamW's implementation keyword (nothing for ``"default"``)."""
        return {} if self.optimizer == "default" else {self.optimizer: True}


def apply_backends(speed: SpeedConfig) -> None:
    """Switch on the process-wide cuDNN autotuning / TF32 flags that ``speed`` asks for."""
    if speed.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    if speed.tf32:  # matmuls; cuDNN convolutions use TF32 by default already
        torch.set_float32_matmul_precision("high")


def to_channels_last(*modules: nn.Module | None) -> None:
    """In place: the 4-d parameters and buffers of each module in NHWC (values unchanged)."""
    for m in modules:
        if isinstance(m, nn.Module):
            m.to(memory_format=torch.channels_last)


class LossReader:
    """Reads an update's losses on the host: after each update, or every ``every`` updates.

    ``every = 1``: :meth:`before_update` reads and checks the losses before anything is applied
    (the trainer's default behaviour, one host synchronisation per update). ``every > 1``: the
    loss vectors stay on the device; :meth:`after_update` reads all of them at once every
    ``every`` updates (one synchronisation), checks them in order, and on a non-finite value
    restores the state saved at the last check and raises. ``owner`` is the
    :class:`scflow.trainer.Distiller` whose state is saved and restored: the weights of its
    nets, its optimizers, its step, loss history and lineage (what its checkpoint holds). Its
    history then holds the read updates only.
    """

    def __init__(self, owner: Any, every: int = 1) -> None:
        ckpt_every = owner.cfg.ckpt_every
        if ckpt_every % every:  # a checkpoint then falls on a read: the history misses nothing
            raise ValueError(f"ckpt_every ({ckpt_every}) must be a multiple of speed.log_every "
                             f"({every})")
        # a weak reference: the Distiller owns this reader, not the other way round (no cycle)
        self._owner, self.every = weakref.ref(owner), every
        self._pending: list[tuple[int, list[str], Tensor]] = []
        self._saved: dict[str, Any] | None = None

    def before_update(self, it: int, names: list[str], vals: Tensor) -> dict[str, float]:
        """Update ``it``'s losses as floats, checked (``every = 1``); else ``{}`` (kept pending)."""
        if self.every == 1:
            logs = dict(zip(names, vals.tolist(), strict=True))
            check_finite(it, logs)  # nothing has been applied yet
            return logs
        if self._pending and self._pending[-1][0] != it - 1:
            self.discard()  # the state was replaced (a resume): what was pending is gone
        if not self._pending:
            self._saved = self._save_state()  # the last checked state: what a rollback restores
        self._pending.append((it, names, vals.detach()))
        return {}

    def after_update(self, it: int, logs: dict[str, float]) -> dict[str, float]:
        """``logs`` (``every = 1``); else the checked losses of ``it`` every ``every`` updates."""
        if self.every == 1 or it % self.every:
            return logs
        return self.flush()

    def flush(self) -> dict[str, float]:
        """Read and check every pending update; the last one's losses (``{}`` if none pending).

        On a non-finite value: the owner goes back to the last checked state, then
        :class:`NonFiniteLossError` names the first bad update and term.
        """
        if not self._pending:
            return {}
        pending, self._pending = self._pending, []
        rows = torch.stack([v for _, _, v in pending]).tolist()  # the one synchronisation
        logs: dict[str, float] = {}
        for (it, names, _), row in zip(pending, rows, strict=True):
            logs = dict(zip(names, row, strict=True))
            try:
                check_finite(it, logs)
            except NonFiniteLossError as err:
                step = self._restore_state()
                err.add_note(f"rolled back to update {step}, the last one whose losses were "
                             f"checked (log_every {self.every})")
                raise
        self._saved = None
        return logs

    def discard(self) -> None:
        """Forget pending updates and the saved state (after the owner's state was replaced)."""
        self._pending, self._saved = [], None

    # --- the trained state that a rollback restores --------------------------------------------
    def _save_state(self) -> dict[str, Any]:
        d = self._owner()
        nets = {name: getattr(d, name) for name in ("student", "target", "eval_ema", "disc")}
        return {"step": d.step_count, "history": len(d.history), "lineage": copy.deepcopy(d.lineage),
                "nets": {k: {n: t.detach().clone() for n, t in m.state_dict().items()}
                         for k, m in nets.items() if isinstance(m, nn.Module)},
                "opts": {k: copy.deepcopy(getattr(d, k).state_dict())
                         for k in ("opt", "d_opt") if getattr(d, k) is not None}}

    def _restore_state(self) -> int:
        d, saved = self._owner(), self._saved
        assert saved is not None, "a pending update always has a saved state"
        for name, sd in saved["nets"].items():
            getattr(d, name).load_state_dict(sd)
        for name, sd in saved["opts"].items():
            getattr(d, name).load_state_dict(sd)
        del d.history[saved["history"]:]
        d.lineage[:] = saved["lineage"]
        d.step_count, self._saved = saved["step"], None
        return d.step_count
