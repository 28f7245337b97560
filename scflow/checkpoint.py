"""Distillation checkpoints: exact resume, atomic writes, strict configs, known code.

A checkpoint holds the student, target, eval_ema and discriminator weights, both optimizers,
the number of completed updates, the loss history of every one of them, every RNG state (torch
CPU, CUDA if any, Python, NumPy), the lineage of the run (which code version and torch thread
count trained which updates, :mod:`scflow.provenance`), plus the configs needed to refuse a
mismatched resume. It is written to a temporary file in the same folder and renamed, so a killed
run never leaves a half-written checkpoint, nor weights without their history.

A checkpoint written by other code (another source fingerprint) is not resumed unless allowed
(``allow_other_code``, or ``SCFLOW_ALLOW_OTHER_CODE=1``): continuing it would give numbers that
neither version computes. Another torch thread count is warned about and recorded.

Two bugs of the authors' code are avoided on purpose: resuming never touches the teacher (their
resume overwrote it with the student and re-initialised the target EMA), and the teacher itself
is loaded strictly with its expected config (:func:`load_teacher`).
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from scflow import provenance
from scflow.cache import naming_a_full_disk
from scflow.nets import VelocityNet, _jsonable, check_config_match

FORMAT_VERSION = 2
"""2: with the loss history and the lineage (format 1 had neither: refused, see :func:`load_checkpoint`)."""


class OtherCodeError(ValueError):
    """A checkpoint was written by another version of the code (resuming it is not allowed)."""


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
        with naming_a_full_disk(path):  # torch's zip writer: "unexpected pos" on a full disk
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
        "rng": capture_rng(), "history": list(d.history), "lineage": [dict(s) for s in d.lineage],
    }


def save_checkpoint(d: Any, path: str | Path) -> Path:
    """Write ``d``'s checkpoint atomically (callers write from the main process only)."""
    return atomic_save(checkpoint_state(d), path)


def load_checkpoint(d: Any, path: str | Path, check_config: bool = True,
                    allow_other_code: bool | None = None) -> int:
    """Restore ``d`` from ``path`` in place (the teacher is never touched); return the step.

    Refused (``ValueError``, before ``d`` is changed) if the checkpoint's loss history does not
    cover its updates, if its student does not have the architecture of ``d``'s teacher, if it
    was made with another teacher config, or (``check_config``) with another distillation
    config; refused (:class:`OtherCodeError`) if its last updates were trained by other code,
    unless ``allow_other_code`` (default: ``$SCFLOW_ALLOW_OTHER_CODE``). Another torch thread
    count only warns. ``d.history`` and ``d.lineage`` continue the checkpoint's.
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
    folder = Path(path).parent
    if ck.get("format") == 1:
        raise ValueError(f"checkpoint {path} was written before checkpoints recorded their code "
                         f"version and loss history; delete {folder} to retrain this run from "
                         f"update 0")
    if ck.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unknown checkpoint format {ck.get('format')!r}")
    step = int(ck["step"])
    _check_covered(ck, step, path, folder)
    _check_code(ck["lineage"], path, folder, allow_other_code)
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
    d.step_count = step
    d.history = list(ck["history"])
    d.lineage = [dict(s) for s in ck["lineage"]]
    provenance.note_lineage(d.lineage)
    return step


def _check_covered(ck: dict[str, Any], step: int, path: str | Path, folder: Path) -> None:
    """The history holds updates 1..step in order, and the lineage ends at ``step``."""
    history, lineage = ck.get("history"), ck.get("lineage")
    steps = [h.get("step") if isinstance(h, dict) else None for h in history or []]
    ends = lineage[-1].get("last") if lineage else 0
    if steps != list(range(1, step + 1)) or ends != step:
        held = f"{len(steps)} entries" if steps else "none"
        raise ValueError(f"checkpoint {path} has {step} updates but its loss history does not "
                         f"cover them (updates 1..{step} wanted, {held} found, lineage up to "
                         f"{ends}); delete {folder} to retrain this run from update 0")


def _check_code(lineage: list[dict[str, Any]], path: str | Path, folder: Path,
                allow: bool | None) -> None:
    """Refuse a checkpoint whose last updates other code trained; warn on other thread counts."""
    if not lineage:
        return  # written at update 0: nothing trained yet
    last = lineage[-1]
    here = provenance.current_segment(0, 0)
    if last["code"] != here["code"]:
        allow = provenance.allowed_other_code() if allow is None else allow
        if not allow:
            raise OtherCodeError(
                f"checkpoint {path} was trained (updates {last['first']}-{last['last']}) by "
                f"{provenance.describe(last)}, this is {provenance.describe(here)}: resuming "
                f"would mix two code versions in one run. Delete {folder} to retrain from update "
                f"0, or allow it with {provenance.ALLOW_OTHER_CODE_ENV}=1 (runner: "
                f"--allow-resume-other-code); the results then list both in code_version")
        warnings.warn(f"{path}: resuming a checkpoint trained by {provenance.describe(last)} "
                      f"with {provenance.describe(here)} (allowed); results list both",
                      stacklevel=3)
    if last["threads"] != here["threads"]:
        warnings.warn(f"{path}: updates {last['first']}-{last['last']} were trained with "
                      f"{last['threads']} torch threads, this process has {here['threads']}: "
                      f"the result will not be bit-identical to a run with one thread count "
                      f"(both are recorded in torch_threads)", stacklevel=3)
