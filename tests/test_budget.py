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


def test_method_switches_move_discriminator_lr_with_student():
    assert budget.method_switches("cd", 1e-4) == {"t_trunc": 0.0, "lambda_gan": 0.0,
                                                  "lambda_rf": 0.0, "lambda_bi": 0.0,
                                                  "student_lr": 1e-4, "disc_lr": 1e-4}
    with pytest.raises(ValueError, match="unknown method"):
        budget.method_switches("lcm", 1e-4)


@pytest.mark.slow
def test_snapshot_equals_shorter_run(one_thread):
    p = preset_values("smoke")
    s = prepare(p, progress=False)
    q = {**p, "distill_steps": 4, "ckpt_every": 0}
    long, _ = distill(q, s, budget.method_switches("scflow", 1e-4), progress=False,
                      snapshots=[2, 4])
    short, _ = distill({**q, "distill_steps": 2}, s, budget.method_switches("scflow", 1e-4),
                       progress=False)
    snap = torch.load(snapshot_path(long.ckpt_dir, 2))
    for k, v in short.eval_ema.state_dict().items():
        assert torch.equal(snap[k], v), k
    assert not torch.equal(torch.load(snapshot_path(long.ckpt_dir, 4))[k], v)
    with pytest.raises(ValueError, match="outside"):
        distill(q, s, budget.method_switches("scflow", 1e-4), progress=False, snapshots=[5])


@pytest.mark.parametrize("notebook,method", [("02_naive_consistency_distillation", "cd"),
                                             ("03_truncation_and_gan", "gan"),
                                             ("04_reflow_loss", "rf"),
                                             ("05_bidirectional_loss", "scflow")])
def test_study_methods_are_the_notebooks_methods(notebook, method):
    """The study trains exactly the switches each Table 4 notebook shows as its ``METHOD``."""
    import ast

    import nbformat

    from scflow.repro.notebooks import notebook_path

    nb = nbformat.read(notebook_path(notebook), as_version=4)
    found = [ast.literal_eval(node.value) for c in nb.cells if c.cell_type == "code"
             for node in ast.walk(ast.parse(c.source))
             if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "METHOD"]
    assert found == [budget.TABLE4_METHODS[method]]


def test_study_hash_ignores_only_preset_keys_it_never_reads(monkeypatch):
    """The study sets updates and both learning rates itself: the preset's values of those keys
    (and the baseline's) are outside its hash, and its students do not depend on them; any
    other preset value still invalidates it."""
    from collections import ChainMap

    from scflow.distill import config_from_params
    from scflow.repro.plan import plan
    from scflow.repro.presets import PRESET_KEYS_NOT_READ, PRESETS

    nb = "09_training_budget"
    unread = PRESET_KEYS_NOT_READ[nb]
    assert {"distill_steps", "student_lr", "disc_lr", "rectified_reflow_steps"} <= set(unread)

    def study(updates: int = 2000):
        P = plan(["papermill_runs/study_budget.yaml"], "mini")[0].params
        q = {**P, "distill_steps": updates}
        cfg = config_from_params(ChainMap(budget.method_switches("scflow", 1e-4), q,
                                          preset_values("mini")), seed=P["study_seed"])
        return P.config_hash, cfg.as_dict()

    before = study()
    changed = {"distill_steps": 7, "student_lr": 3e-3, "disc_lr": 3e-3,
               "rectified_reflow_steps": 5}
    monkeypatch.setitem(PRESETS, "mini", {**PRESETS["mini"], **changed})
    assert study() == before
    monkeypatch.setitem(PRESETS, "mini", {**PRESETS["mini"], "warmup_rf": 7})
    assert study()[0] != before[0] and study()[1] != before[1]
