"""The training-budget study: snapshots equal shorter runs, the cost model, the selection rule."""

from __future__ import annotations

import math

import pytest
import torch

from scflow.repro import budget
from scflow.repro.experiment import distill, prepare, snapshot_path
from scflow.repro.presets import preset_values


def _rows(method, lr, step, fids):
    return [{"metric": "fid", "value": v, "method": method, "lr": lr, "step": step, "nfe": n}
            for n, v in zip((1, 2, 4), fids, strict=True)]


def test_select_setting_averages_methods_and_breaks_ties_low():
    rows = (_rows("cd", 1e-4, 100, [10, 10, 10]) + _rows("scflow", 1e-4, 100, [10, 10, 10])
            + _rows("cd", 2e-5, 100, [20, 20, 20]) + _rows("scflow", 2e-5, 100, [5, 5, 5])
            + _rows("cd", 1e-4, 50, [1, 1, 1]))  # another budget: ignored
    # geometric means: 1e-4 -> 10, 2e-5 -> sqrt(20 * 5) = 10: a tie, the smaller rate wins
    assert budget.select_setting(rows, 100, (1, 2, 4)) == 2e-5
    rows[0]["value"] = 5.0  # 1e-4 now better by far more than 2%
    assert budget.select_setting(rows, 100, (1, 2, 4)) == 1e-4
    with pytest.raises(ValueError, match="no study rows"):
        budget.select_setting(rows, 7, (1, 2, 4))


def test_mean_log_fid_needs_every_nfe():
    assert budget.mean_log_fid(_rows("cd", 1.0, 1, [1, math.e, math.e ** 2]), (1, 2, 4)) == \
        pytest.approx(1.0)
    with pytest.raises(ValueError, match="one FID per NFE"):
        budget.mean_log_fid(_rows("cd", 1.0, 1, [1, 2, 3]), (1, 2, 4, 8))


def test_grid_wall_minutes():
    # 50 fixed one-thread minutes + 10 students x (100 updates x 0.6 s + 60 s) = 70 min on 2 slots
    assert budget.grid_wall_minutes(100, 0.6, 10, 50.0, 60.0) == pytest.approx(35.0)


def test_study_config_moves_discriminator_lr_with_student():
    cfg = budget.study_config(preset_values("smoke"), "cd", 1e-4)
    assert (cfg.fidelity.student_lr, cfg.fidelity.disc_lr) == (1e-4, 1e-4)
    assert (cfg.t_trunc, cfg.lambda_gan, cfg.lambda_rf, cfg.lambda_bi) == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="unknown method"):
        budget.study_config(preset_values("smoke"), "lcm", 1e-4)


@pytest.mark.slow
def test_snapshot_equals_shorter_run(one_thread):
    p = preset_values("smoke")
    s = prepare(p, progress=False)
    cfg = budget.study_config({**p, "ckpt_every": 0}, "scflow", 1e-4)
    long, _ = distill(s, cfg, 4, progress=False, snapshots=[2, 4])
    short, _ = distill(s, cfg, 2, progress=False)
    snap = torch.load(snapshot_path(long.ckpt_dir, 2))
    for k, v in short.eval_ema.state_dict().items():
        assert torch.equal(snap[k], v), k
    assert not torch.equal(torch.load(snapshot_path(long.ckpt_dir, 4))[k], v)
    with pytest.raises(ValueError, match="outside"):
        distill(s, cfg, 4, progress=False, snapshots=[5])


def test_study_hash_ignores_only_preset_keys_it_never_reads(monkeypatch):
    """The study sets updates and both learning rates itself: the preset's values of those keys
    (and the baseline's) are outside its hash, and its students do not depend on them; any
    other preset value still invalidates it."""
    from scflow.repro.plan import plan
    from scflow.repro.presets import PRESET_KEYS_NOT_READ, PRESETS

    nb = "09_training_budget"
    unread = PRESET_KEYS_NOT_READ[nb]
    assert {"distill_steps", "student_lr", "disc_lr", "rectified_reflow_steps"} <= set(unread)

    def study():
        P = plan(["papermill_runs/study_budget.yaml"], "mini")[0].params
        cfg = budget.study_config({**P, "seed": P["study_seed"]}, "scflow", 1e-4)
        return P.config_hash, cfg.as_dict()

    before = study()
    changed = {"distill_steps": 7, "student_lr": 3e-3, "disc_lr": 3e-3,
               "rectified_reflow_steps": 5}
    monkeypatch.setitem(PRESETS, "mini", {**PRESETS["mini"], **changed})
    assert study() == before
    monkeypatch.setitem(PRESETS, "mini", {**PRESETS["mini"], "warmup_rf": 7})
    assert study()[0] != before[0] and study()[1] != before[1]
