"""Distillation checkpoints: exact resume, atomic writes, strict configs.

A checkpoint holds the student, target, eval_ema and discriminator weights, both optimizers,
the number of completed updates and every RNG state (torch CPU, CUDA if any, Python, NumPy),
plus the configs needed to refuse a mismatched resume. It is written to a temporary file in the
same folder and renamed, so a killed run never leaves a half-written checkpoint.

Two bugs of the authors' code are avoided on purpose: resuming never touches the teacher (their
resume overwrote it with the student and re-initialised the target EMA), and the teacher itself
is loaded strictly with its expected config (:func:`load_teacher`).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from scflow.nets import VelocityNet, _jsonable, check_config_match

FORMAT_VERSION = 1


def load_teacher(path: str | Path, expected: dict[str, Any] | None) -> VelocityNet:
    """Load a saved teacher strictly (``VelocityNet.load``) and freeze it (eval, no grad)."""
    teacher = VelocityNet.load(path, expected=expected)
    teacher.requires_grad_(False)
    return teacher.eval()


def net_config(net: object) -> dict[str, Any] | None:
    """The wrapper config of a :class:`VelocityNet` (None for other callables)."""
    return _jsonable(net.wrapper_config()) if hasattr(net, "wrapper_config") else None


# --- RNG states --------------------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """Every global RNG state, as tensors and plain Python values (safe for weights_only)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                       float(gauss))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- atomic file writing -----------------------------------------------------------------------
def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary sibling, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# --- checkpoints of a Distiller ------------------------------------------------------------------
def _sd(module: nn.Module | None) -> dict[str, Any] | None:
    return None if module is None else module.state_dict()


def checkpoint_state(d: Any) -> dict[str, Any]:
    """Everything needed to continue the run of the :class:`scflow.trainer.Distiller` ``d``."""
    return {
        "format": FORMAT_VERSION, "step": d.step_count, "config": _jsonable(d.cfg.as_dict()),
        "teacher_config": net_config(d.teacher), "student_config": net_config(d.student),
        "student": _sd(d.student), "target": _sd(d.target), "eval_ema": _sd(d.eval_ema),
        "disc": _sd(d.disc) if isinstance(d.disc, nn.Module) else None,
        "opt": d.opt.state_dict(), "d_opt": None if d.d_opt is None else d.d_opt.state_dict(),
        "rng": capture_rng(),
    }


def save_checkpoint(d: Any, path: str | Path) -> Path:
    """Write ``d``'s checkpoint atomically (callers write from the main process only)."""
    return atomic_save(checkpoint_state(d), path)


def load_checkpoint(d: Any, path: str | Path, check_config: bool = True) -> int:
    """Restore ``d`` from ``path`` in place (the teacher is never touched); return the step.

    Refused (``ValueError``) if the checkpoint's student does not have the architecture of
    ``d``'s teacher, if it was made with another teacher config, or (``check_config``) with
    another distillation config.
    """
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # truncated zip, bad pickle, wrong file: all end the same way
        raise ValueError(f"checkpoint {path} is truncated or corrupt ({type(err).__name__}: "
                         f"{err}); delete it to restart this run from update 0") from err
    if not isinstance(ck, dict):
        raise ValueError(f"checkpoint {path} holds a {type(ck).__name__}, not a checkpoint; "
                         f"delete it to restart this run from update 0")
    if ck.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unknown checkpoint format {ck.get('format')!r}")
    teacher_cfg = net_config(d.teacher)
    if teacher_cfg is not None:
        check_config_match(ck["student_config"] or {}, teacher_cfg, where=f"{path} (student)")
        check_config_match(ck["teacher_config"] or {}, teacher_cfg, where=f"{path} (teacher)")
    if check_config:
        check_config_match(ck["config"], _jsonable(d.cfg.as_dict()), where=f"{path} (config)")
    d.student.load_state_dict(ck["student"], strict=True)
    d.target.load_state_dict(ck["target"], strict=True)
    d.eval_ema.load_state_dict(ck["eval_ema"], strict=True)
    if (ck["disc"] is None) != (not isinstance(d.disc, nn.Module)):
        raise ValueError(f"{path}: discriminator presence differs from this run's")
    if ck["disc"] is not None:
        d.disc.load_state_dict(ck["disc"], strict=True)
    d.opt.load_state_dict(ck["opt"])
    if d.d_opt is not None and ck["d_opt"] is not None:
        d.d_opt.load_state_dict(ck["d_opt"])
    restore_rng(ck["rng"])
    d.step_count = int(ck["step"])
    return d.step_count
