"""Training-budget study: FID over NFE of the Table 4 rows as functions of updates and schedule.

Each studied *schedule* (:data:`SCHEDULES`) is a learning-rate schedule with an evaluation EMA:
``constant`` is the authors' code (a constant rate, a short EMA); ``cosine`` decays the rate to
0 at the run's last update and keeps a longer EMA with warm-up (:mod:`scflow.schedule`), the
remedy for a student that drifts when trained longer at a constant rate (as on the 8×8
digits; on MNIST none drifted). With a schedule whose every value depends on the update index
alone (``constant``), one run yields a whole budget curve: its evaluation EMA's weights at
update k are what a k-update run gives (:func:`scflow.repro.experiment.train_resumable`
``snapshots``). A decaying rate ends at the
run's last update, so every budget is its own run.

Every student is scored on the evaluation bank (:func:`scflow.evaluate.evaluate_bank`), so two
settings are compared draw by draw. The selection rule (:func:`select_setting`) is fixed in code
before the study runs and reads only the study's own runs: its own training seed, never a
reported row.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from scflow.distill import DistillConfig
from scflow.evaluate import evaluate_bank
from scflow.repro.configs import distill_config
from scflow.repro.experiment import Setup, distill, snapshot_path
from scflow.repro.methods import table4_method

SCHEDULES: dict[str, dict[str, Any]] = {
    # the authors' code: constant rate; the miniature's 0.99 evaluation EMA (0.9999 would still
    # be mostly the teacher after a few thousand updates)
    "constant": {"lr_schedule": "constant", "eval_ema_decay": 0.99, "eval_ema_warmup": False},
    # a rate that anneals to 0 at the last update, and an EMA over about 1,000 updates whose
    # warm-up keeps no share of the teacher's weights
    "cosine": {"lr_schedule": "cosine", "eval_ema_decay": 0.999, "eval_ema_warmup": True},
}
"""The studied schedules: the parameters each sets (the rest of a run is the preset's)."""


def study_config(p: Mapping[str, Any], method: str, schedule: str, updates: int) -> DistillConfig:
    """Algorithm 1 for the Table 4 row ``method`` (:data:`scflow.repro.methods.TABLE4`) under
    ``schedule`` (:data:`SCHEDULES`) for ``updates`` updates; the rest from ``p``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
    return distill_config({**p, **SCHEDULES[schedule], "distill_steps": int(updates)},
                          table4_method(method))


def one_curve(schedule: str) -> bool:
    """Whether one run's snapshots give every budget of ``schedule`` (its values depend on the
    update index only, not on the run's length)."""
    return SCHEDULES[schedule]["lr_schedule"] == "constant"


def budget_curve(p: Mapping[str, Any], s: Setup, method: str, schedule: str,
                 budgets: Sequence[int], extractor: Any, nfe_list: Sequence[int], n_eval: int,
                 draws: int, progress: bool = True) -> list[dict[str, Any]]:
    """Distil ``method`` under ``schedule`` to every budget of ``budgets`` and score the
    evaluation EMA of each on the evaluation bank (every metric, NFE and draw).

    Returns metric rows (``metric, value, method, nfe, draw, step, schedule``); every run is
    cached and resumable like every distillation.
    """
    budgets = sorted({int(k) for k in budgets})
    rows: list[dict[str, Any]] = []

    def score(net: Any, k: int) -> None:
        _, r = evaluate_bank(net, s.codec, s.latent_shape, n_eval, draws, list(nfe_list),
                             s.data.images, extractor, method=method)
        rows.extend({**row, "step": k, "schedule": schedule} for row in r)

    if one_curve(schedule):
        d, _ = distill(s, study_config(p, method, schedule, budgets[-1]), budgets[-1],
                       progress=progress, snapshots=budgets)
        for k in budgets:
            d.eval_ema.load_state_dict(torch.load(snapshot_path(d.ckpt_dir, k),
                                                  map_location=d.device))
            score(d.eval_ema, k)
    else:
        for k in budgets:
            d, _ = distill(s, study_config(p, method, schedule, k), k, progress=progress)
            score(d.eval_ema, k)
    return rows


def seconds_per_update(p: Mapping[str, Any], s: Setup, method: str,
                       updates: int = 20, warmup: int = 3) -> float:
    """Measured wall seconds of one update of ``method`` (all its loss terms active) here."""
    from scflow.trainer import Distiller

    cfg = dataclasses.replace(study_config(p, method, "constant", updates), warmup_gan=0,
                              warmup_rf=0, warmup_bi=0)
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
    """Mean over ``nfes`` of log FID, each NFE's FID first averaged over the bank's draws (a
    scale-free summary: every NFE weighs the same)."""
    by_nfe: dict[int, list[float]] = {}
    for r in rows:
        if r["metric"] == "fid" and r["nfe"] in nfes:
            by_nfe.setdefault(r["nfe"], []).append(r["value"])
    if set(by_nfe) != set(nfes):
        raise ValueError(f"expected FID at every NFE {list(nfes)}, found {sorted(by_nfe)}")
    return sum(math.log(sum(v) / len(v)) for v in by_nfe.values()) / len(nfes)


def select_setting(rows: Sequence[Mapping[str, Any]], budgets: Sequence[int],
                   nfes: Sequence[int], tie: float = 0.02) -> tuple[str, int]:
    """The rule that picks the miniature's schedule and budget (written before the study ran).

    Among the studied (schedule, budget) with the budget in ``budgets`` (those whose grid fits
    the time limit, :func:`grid_wall_minutes`), take the one with the lowest mean log FID over
    ``nfes`` (:func:`mean_log_fid`), averaged over every studied method alike, so no row of
    Table 4 is favoured. Settings within ``tie`` (relative, on exp of the score) of the best
    count as tied: the smallest budget wins, then ``constant`` (the authors' code). Returns
    ``(schedule, budget)``.
    """
    methods = sorted({r["method"] for r in rows})
    settings = sorted({(r["schedule"], r["step"]) for r in rows if r["step"] in budgets})
    if not settings:
        raise ValueError(f"no study rows at the budgets {sorted(budgets)}")
    score = {st: sum(mean_log_fid([r for r in rows if (r["schedule"], r["step"]) == st
                                   and r["method"] == m], nfes) for m in methods) / len(methods)
             for st in settings}
    best = min(score.values())
    tied = [st for st in settings if math.exp(score[st] - best) <= 1 + tie]
    return min(tied, key=lambda st: (st[1], st[0] != "constant"))


def paired_gap(rows: Sequence[Mapping[str, Any]], a: Mapping[str, Any], b: Mapping[str, Any],
               metric: str = "fid") -> tuple[float, float, int]:
    """``(mean, standard error, draws)`` of ``a - b`` over the bank's draws: ``a`` and ``b`` select
    rows by their fields (e.g. ``{"method": "scflow", "schedule": "cosine", "step": 2000,
    "nfe": 1}``), paired by ``draw``."""
    def values(sel: Mapping[str, Any]) -> dict[int, float]:
        return {r["draw"]: r["value"] for r in rows if r["metric"] == metric
                and all(r.get(k) == v for k, v in sel.items())}

    va, vb = values(a), values(b)
    diffs = [va[k] - vb[k] for k in sorted(set(va) & set(vb))]
    if not diffs:
        raise ValueError(f"no common draws for {dict(a)} and {dict(b)}")
    mean = sum(diffs) / len(diffs)
    if len(diffs) < 2:
        return mean, math.nan, 1
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    return mean, sd / math.sqrt(len(diffs)), len(diffs)


CLAIMED_DIFFERENCES: tuple[tuple[str, int, str, int], ...] = (
    ("gan", 1, "cd", 1),  # truncation + GAN repair the one-step sample
    ("cd", 16, "cd", 2),  # CD gets worse with more steps
    ("scflow", 16, "scflow", 1),  # full SCFlow is flat over NFE
    *(("scflow", n, "cd", n) for n in (1, 2, 4, 8, 16)),  # SCFlow beats CD, at every NFE
)
"""The FID differences of Table 4 the claims test that the study's rows (CD, +GAN, full SCFlow)
can measure: ``(row a, NFE of a, row b, NFE of b)`` for ``a - b``."""


def bank_check(rows: Sequence[Mapping[str, Any]], schedule: str, updates: int,
               differences: Sequence[tuple[str, int, str, int]] = CLAIMED_DIFFERENCES
               ) -> dict[str, Any]:
    """The bank-size rule (docs/METHOD.md §8, fixed before any reported student was scored):
    at the chosen ``(schedule, updates)``, the smallest of ``differences`` in size, its paired
    standard error over the study's draws (:func:`paired_gap`), and whether that error is at
    most a third of it (the bank is then large enough; else more draws)."""
    found = []
    for a, na, b, nb in differences:
        sel = {"schedule": schedule, "step": updates}
        try:
            mean, se, n = paired_gap(rows, {**sel, "method": a, "nfe": na},
                                     {**sel, "method": b, "nfe": nb})
        except ValueError:  # a row or NFE the study did not run
            continue
        found.append({"difference": f"{a} NFE {na} - {b} NFE {nb}", "mean": mean, "se": se,
                      "draws": n})
    if not found:
        raise ValueError(f"no claimed difference measurable at {schedule} {updates}")
    smallest = min(found, key=lambda d: abs(d["mean"]))
    return {**smallest, "ratio": smallest["se"] / abs(smallest["mean"]),
            "enough": smallest["se"] <= abs(smallest["mean"]) / 3}


def study_rows(results: Any) -> list[dict[str, Any]]:
    """The study's metric rows (``method, schedule, step, nfe, draw, metric, value``) from a
    results frame (:func:`scflow.repro.tables.load_results`): every study run's CSV, whichever
    Table 4 rows it trained (the runs split the study to run in parallel)."""
    import pandas as pd

    study = results[(results.notebook == "09_training_budget") & results.method.str.contains(" ")]
    rows = []
    for r in study.itertuples():
        method, schedule = r.method.split(" ", 1)
        if schedule not in SCHEDULES:  # rows of another study (e.g. of learning rates)
            run = getattr(r, "run", "?")
            raise ValueError(f"study row {r.method!r} ({run}.csv): schedule {schedule!r} is not "
                             f"one of {', '.join(SCHEDULES)} (a CSV of another study?)")
        rows.append({"method": method, "schedule": schedule, "metric": r.metric,
                     "value": float(r.value), "step": int(float(r.step)),
                     "nfe": None if pd.isna(r.nfe) else int(float(r.nfe)),
                     "draw": None if pd.isna(r.draw) else int(float(r.draw))})
    return rows


def select_from_results(results: Any, p: Mapping[str, Any]) -> dict[str, Any]:
    """The rule (:func:`select_setting`) applied to every study run's CSV: the grid's minutes at
    each studied budget from the measured seconds per update of full SCFlow and of one
    evaluation, the feasible budgets, the chosen ``(schedule, updates)``. ``p``: the study's
    parameters (limit, students, fixed minutes, NFE)."""
    study = results[results.notebook == "09_training_budget"]
    sec = {m: float(v) for m, v in zip(study[study.metric == "sec_per_update"].method,
                                       study[study.metric == "sec_per_update"].value,
                                       strict=True)}
    evals = study[study.metric == "eval_seconds"].value.astype(float)
    if "scflow" not in sec or evals.empty:
        raise ValueError("the study's CSVs hold no timing of full SCFlow and of an evaluation")
    rows = study_rows(results)
    budgets = sorted({r["step"] for r in rows})
    minutes = {k: grid_wall_minutes(k, sec["scflow"], p["grid_students"],
                                    p["grid_fixed_minutes"], float(evals.max()))
               for k in budgets}
    fits = [k for k in budgets if minutes[k] <= p["budget_minutes"]] or [min(budgets)]
    schedule, updates = select_setting(rows, fits, [n for n in p["nfe_list"] if n <= 16])
    seeds = table4_seeds(updates, sec["scflow"], p["grid_students"], p["grid_fixed_minutes"],
                         float(evals.max()), p["budget_minutes"])
    return {"schedule": schedule, "updates": updates, "minutes": minutes, "feasible": fits,
            "table4_seeds": seeds, "sec_per_update": sec, "eval_seconds": float(evals.max())}


TABLE4_ROWS = 4
BASE_SEEDS = 3
"""``grid_students`` counts Table 4's four rows with these three training seeds."""


def table4_seeds(updates: int, sec_per_update: float, n_students: int, fixed_minutes: float,
                 eval_seconds: float, limit: float) -> int:
    """Training seeds of each Table 4 row (rule 3, after the budget): at least three, and as many
    more as the grid at ``updates`` still fits ``limit`` with (each adds four students). The
    budget comes first: more updates are worth more than more seeds of too short a run."""
    seeds = BASE_SEEDS
    while grid_wall_minutes(updates, sec_per_update, n_students + TABLE4_ROWS * (seeds + 1
                            - BASE_SEEDS), fixed_minutes, eval_seconds) <= limit:
        seeds += 1
    return seeds
