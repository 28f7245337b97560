"""Training-budget study: how FID-vs-NFE of CD and SCFlow changes with updates and learning rate.

One distillation run per (method, learning rate) keeps the evaluation EMA's weights at several
updates (:func:`scflow.repro.experiment.distill` ``snapshots``); with a constant learning rate the
snapshot at update k is exactly the student a k-update run would give, so one run yields a whole
budget curve. The discriminator's learning rate moves with the student's (the paper uses one
rate for both on CelebA-HQ).

The selection rule that turns the study into the miniature's settings is :func:`select_setting`;
it is fixed in code before the study is run and reads only the study's own runs (another seed
than the reported tables), never the reported numbers.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from scflow.distill import DistillConfig
from scflow.evaluate import evaluate_nfe
from scflow.repro.configs import distill_config
from scflow.repro.experiment import Setup, distill, snapshot_path
from scflow.repro.methods import table4_method


def study_config(p: Mapping[str, Any], method: str, lr: float) -> DistillConfig:
    """Algorithm 1 for the Table 4 row ``method`` (:data:`scflow.repro.methods.TABLE4`) with
    the student and the discriminator at learning rate ``lr``; the rest from ``p``."""
    return distill_config({**p, "student_lr": float(lr), "disc_lr": float(lr)},
                          table4_method(method))


def budget_curve(p: Mapping[str, Any], s: Setup, method: str, lr: float,
                 checkpoints: Sequence[int], z1: torch.Tensor, extractor: Any,
                 nfe_list: Sequence[int], progress: bool = True) -> list[dict[str, Any]]:
    """Distil ``method`` at learning rate ``lr`` for ``max(checkpoints)`` updates and evaluate the
    evaluation EMA at every checkpoint (FID, precision/recall, std_ratio, consistency vs NFE).

    Returns metric rows (``metric, value, method, nfe, step, lr``); the run is cached and
    resumable like every distillation.
    """
    checkpoints = sorted(set(int(k) for k in checkpoints))
    d, _ = distill(s, study_config(p, method, lr), checkpoints[-1], progress=progress,
                   snapshots=checkpoints)
    net = d.eval_ema
    rows: list[dict[str, Any]] = []
    for k in checkpoints:
        net.load_state_dict(torch.load(snapshot_path(d.ckpt_dir, k), map_location=d.device))
        _, r = evaluate_nfe(net, s.codec, z1, list(nfe_list), s.data.images, extractor,
                            method=method)
        rows += [{**row, "step": k, "lr": float(lr)} for row in r]
    return rows


def seconds_per_update(p: Mapping[str, Any], s: Setup, method: str, lr: float,
                       updates: int = 20, warmup: int = 3) -> float:
    """Measured wall seconds of one update of ``method`` (all its loss terms active) here."""
    from scflow.trainer import Distiller

    cfg = dataclasses.replace(study_config(p, method, lr), warmup_gan=0, warmup_rf=0,
                              warmup_bi=0)
    d = Distiller(s.teacher, s.train_data, cfg, device=s.device)
    for _ in range(warmup):
        d.train_step()
    start = time.perf_counter()
    for _ in range(updates):
        d.train_step()
    return (time.perf_counter() - start) / updates


def grid_wall_minutes(updates: int, sec_per_update: float, n_students: int,
                      fixed_minutes: float, eval_seconds: float, slots: int = 2) -> float:
    """Estimated wall minutes of the whole grid at ``updates`` per student on ``slots`` processes.

    One-thread work = the fixed runs (teacher, text-to-image, baseline, report) + every student's
    updates and evaluation, spread evenly over the slots (the runner's ``--jobs``).
    """
    work = fixed_minutes + n_students * (updates * sec_per_update + eval_seconds) / 60
    return work / slots


def mean_log_fid(rows: Sequence[Mapping[str, Any]], nfes: Sequence[int]) -> float:
    """Mean of log FID over ``nfes`` (a scale-free summary: every NFE weighs the same)."""
    vals = [math.log(r["value"]) for r in rows if r["metric"] == "fid" and r["nfe"] in nfes]
    if len(vals) != len(nfes):
        raise ValueError(f"expected one FID per NFE {list(nfes)}, found {len(vals)}")
    return sum(vals) / len(vals)


def select_setting(rows: Sequence[Mapping[str, Any]], budget: int, nfes: Sequence[int],
                   tie: float = 0.02) -> float:
    """The rule that picks the miniature's learning rate (written before the study ran).

    At ``budget`` updates (the largest studied budget whose grid fits the time limit), take the
    learning rate with the lowest mean log FID over ``nfes``, averaged over every studied method
    (CD and SCFlow alike, so no method is favoured). Learning rates within ``tie`` (relative, on
    exp of the score) of the best count as tied and the smallest of them wins (closest to the
    paper's fine-tuning rate). Returns the chosen learning rate.
    """
    at = [r for r in rows if r["step"] == budget]
    lrs = sorted({r["lr"] for r in at})
    methods = sorted({r["method"] for r in at})
    if not lrs:
        raise ValueError(f"no study rows at {budget} updates")
    score = {lr: sum(mean_log_fid([r for r in at if r["lr"] == lr and r["method"] == m], nfes)
                     for m in methods) / len(methods) for lr in lrs}
    best = min(score.values())
    return min(lr for lr in lrs if math.exp(score[lr] - best) <= 1 + tie)
