"""The training-budget study: snapshots equal shorter runs, schedules, the cost model, the rule."""

from __future__ import annotations

import math

import pytest
import torch

from scflow.repro import budget
from scflow.repro.experiment import distill, prepare, snapshot_path
from scflow.repro.presets import preset_values


def _rows(method, schedule, step, fids, draw=0):
    return [{"metric": "fid", "value": v, "method": method, "schedule": schedule, "step": step,
             "nfe": n, "draw": draw} for n, v in zip((1, 2, 4), fids, strict=True)]


def test_select_setting_averages_methods_and_breaks_ties_to_the_smaller_budget():
    rows = (_rows("cd", "cosine", 100, [10, 10, 10]) + _rows("scflow", "cosine", 100, [10, 10, 10])
            + _rows("cd", "constant", 100, [20, 20, 20])
            + _rows("scflow", "constant", 100, [5, 5, 5])
            + _rows("cd", "constant", 50, [10, 10, 10]) + _rows("scflow", "constant", 50, [10, 10, 10])
            + _rows("cd", "constant", 400, [1, 1, 1]) + _rows("scflow", "constant", 400, [1, 1, 1]))
    # geometric means 10 for every setting at 50 and 100 updates (400 is over the time limit):
    # a tie, the smallest budget wins
    assert budget.select_setting(rows, [50, 100], (1, 2, 4)) == ("constant", 50)
    # at one budget, cosine and constant tied: the authors' constant schedule wins
    assert budget.select_setting(rows, [100], (1, 2, 4)) == ("constant", 100)
    rows[0]["value"] = 5.0  # cosine at 100 now better by far more than 2%
    assert budget.select_setting(rows, [50, 100], (1, 2, 4)) == ("cosine", 100)
    assert budget.select_setting(rows, [50, 100, 400], (1, 2, 4)) == ("constant", 400)
    with pytest.raises(ValueError, match="no study rows"):
        budget.select_setting(rows, [7], (1, 2, 4))


def test_mean_log_fid_averages_draws_first_and_needs_every_nfe():
    rows = _rows("cd", "constant", 1, [1, math.e, math.e ** 2], draw=0) + \
        _rows("cd", "constant", 1, [1, math.e, math.e ** 2], draw=1)
    assert budget.mean_log_fid(rows, (1, 2, 4)) == pytest.approx(1.0)
    two = _rows("cd", "constant", 1, [1, 1, 1], draw=0) + _rows("cd", "constant", 1, [3, 3, 3], 1)
    assert budget.mean_log_fid(two, (1, 2, 4)) == pytest.approx(math.log(2.0))  # log of the mean
    with pytest.raises(ValueError, match="every NFE"):
        budget.mean_log_fid(_rows("cd", "constant", 1, [1, 2, 3]), (1, 2, 4, 8))


def test_paired_gap_pairs_by_draw():
    rows = [{"metric": "fid", "method": m, "nfe": 1, "draw": k, "value": v + off}
            for k, off in enumerate([0.0, 30.0, -10.0]) for m, v in (("a", 12.0), ("b", 10.0))]
    mean, se, n = budget.paired_gap(rows, {"method": "a"}, {"method": "b"})
    assert (mean, se, n) == (pytest.approx(2.0), pytest.approx(0.0), 3)  # the draw offsets cancel
    with pytest.raises(ValueError, match="no common draws"):
        budget.paired_gap(rows, {"method": "a"}, {"method": "c"})


def test_grid_wall_minutes():
    # 50 fixed one-thread minutes + 10 students x (100 updates x 0.6 s + 60 s) = 70 min on 2 slots
    assert budget.grid_wall_minutes(100, 0.6, 10, 50.0, 60.0) == pytest.approx(35.0)


def test_study_config_sets_the_schedule_and_the_row():
    p = preset_values("smoke")
    cfg = budget.study_config(p, "cd", "constant", 40)
    assert (cfg.t_trunc, cfg.lambda_gan, cfg.lambda_rf, cfg.lambda_bi) == (0.0, 0.0, 0.0, 0.0)
    assert (cfg.lr_schedule, cfg.total_steps, cfg.fidelity.eval_decay) == ("constant", 0, 0.99)
    cos = budget.study_config(p, "scflow", "cosine", 40)
    assert (cos.lr_schedule, cos.total_steps, cos.eval_ema_warmup) == ("cosine", 40, True)
    assert cos.fidelity.eval_decay == 0.999
    assert budget.one_curve("constant") and not budget.one_curve("cosine")
    with pytest.raises(ValueError, match="unknown method"):
        budget.study_config(p, "lcm", "constant", 4)
    with pytest.raises(ValueError, match="unknown schedule"):
        budget.study_config(p, "cd", "step", 4)


@pytest.mark.slow
def test_snapshot_equals_shorter_run(one_thread):
    p = preset_values("smoke")
    s = prepare(p, progress=False)
    cfg = budget.study_config({**p, "ckpt_every": 0}, "scflow", "constant", 4)
    long, _ = distill(s, cfg, 4, progress=False, snapshots=[2, 4])
    short, _ = distill(s, budget.study_config({**p, "ckpt_every": 0}, "scflow", "constant", 2), 2,
                       progress=False)
    snap = torch.load(snapshot_path(long.ckpt_dir, 2))
    for k, v in short.eval_ema.state_dict().items():
        assert torch.equal(snap[k], v), k
    assert not torch.equal(torch.load(snapshot_path(long.ckpt_dir, 4))[k], v)
    with pytest.raises(ValueError, match="outside"):
        distill(s, cfg, 4, progress=False, snapshots=[5])
    # a decaying schedule ends at its run's last update: a config for another length is refused
    with pytest.raises(ValueError, match="ends at update 4"):
        distill(s, budget.study_config(p, "scflow", "cosine", 4), 2, progress=False)


def test_hashes_ignore_only_preset_keys_their_notebook_never_reads(monkeypatch):
    """The study sets the update count and the schedule itself, and notebook 01 trains no
    student: the preset's values of those keys are outside their hashes (and the study's
    students do not depend on them); any other preset value still invalidates them."""
    from scflow.repro.plan import plan
    from scflow.repro.presets import PRESET_KEYS_NOT_READ, PRESETS

    assert {"distill_steps", "lr_schedule", "rectified_reflow_steps"} <= \
        set(PRESET_KEYS_NOT_READ["09_training_budget"])

    def hashes():
        study = plan(["studies/study_budget_scflow.yaml"], "mini")[0].params
        teacher = plan(["papermill_runs/01_teacher.yaml"], "mini")[0].params
        cfg = budget.study_config({**study, "seed": study["study_seed"]}, "scflow", "cosine", 40)
        return study.config_hash, cfg.as_dict(), teacher.config_hash

    before = hashes()
    changed = {"distill_steps": 7, "lr_schedule": "linear", "eval_ema_decay": 0.5,
               "eval_ema_warmup": True, "rectified_reflow_steps": 5}
    monkeypatch.setitem(PRESETS, "mini", {**PRESETS["mini"], **changed})
    assert hashes() == before
    monkeypatch.setitem(PRESETS, "mini", {**PRESETS["mini"], "warmup_rf": 7, "lambda_gan": 0.3})
    after = hashes()
    assert after[0] != before[0] and after[1] != before[1]
    assert after[2] == before[2]  # the teacher reads no distillation value
    monkeypatch.setitem(PRESETS, "mini", {**PRESETS["mini"], "teacher_steps": 7})
    assert hashes()[2] != before[2]


def _study_frame():
    import pandas as pd

    rows = []
    for method, fid in (("cd", 20.0), ("scflow", 10.0)):
        for schedule, bonus in (("constant", 0.0), ("cosine", -1.0)):
            for step in (100, 200):
                for nfe in (1, 2):
                    for draw in (0, 1):
                        rows.append(dict(notebook="09_training_budget", metric="fid",
                                         method=f"{method} {schedule}", step=step, nfe=nfe,
                                         draw=draw, value=fid + bonus - step / 100, seed=100))
        rows.append(dict(notebook="09_training_budget", metric="sec_per_update", method=method,
                         value=0.1 if method == "cd" else 0.3, seed=100))
    rows.append(dict(notebook="09_training_budget", metric="eval_seconds", method="timing",
                     value=60.0, seed=100))
    return pd.DataFrame(rows)


def test_select_from_results_reads_every_study_csv():
    p = {"grid_students": 10, "grid_fixed_minutes": 20.0, "budget_minutes": 100.0,
         "nfe_list": [1, 2]}
    rule = budget.select_from_results(_study_frame(), p)
    # grid minutes: (20 + 10 x (k x 0.3 + 60) / 60) / 2 -> 100: 17.5, 200: 20; both fit
    assert rule["minutes"] == {100: pytest.approx(17.5), 200: pytest.approx(20.0)}
    assert (rule["schedule"], rule["updates"]) == ("cosine", 200)
    # each extra seed of Table 4: 4 students x (200 x 0.3 + 60) / 60 / 2 = 4 minutes more
    assert rule["table4_seeds"] == 3 + int((100.0 - 20.0) // 4.0)
    rule = budget.select_from_results(_study_frame(), {**p, "budget_minutes": 18.0})
    assert (rule["schedule"], rule["updates"]) == ("cosine", 100)
    with pytest.raises(ValueError, match="no timing"):
        frame = _study_frame()
        budget.select_from_results(frame[frame.metric != "eval_seconds"], p)


def test_study_rows_refuse_another_studys_rows():
    frame = _study_frame()
    frame.loc[frame.index[0], "method"] = "cd lr=2e-05"  # a learning-rate study's row
    with pytest.raises(ValueError, match="lr=2e-05"):
        budget.study_rows(frame)


def test_table4_seeds_fill_the_time_left():
    # 10 students at 100 updates x 0.6 s + 60 s = 2 min each: (50 + 20) / 2 = 35 min for 3 seeds
    assert budget.table4_seeds(100, 0.6, 10, 50.0, 60.0, limit=35.0) == 3
    assert budget.table4_seeds(100, 0.6, 10, 50.0, 60.0, limit=43.0) == 5  # 4 min per seed
    assert budget.table4_seeds(100, 0.6, 10, 50.0, 60.0, limit=10.0) == 3  # never fewer


def test_the_mini_preset_follows_the_committed_study():
    """The miniature's schedule, budget and Table 4 seeds are what the rule picks from the
    committed study."""
    from pathlib import Path

    from scflow.repro.results import results_dir
    from scflow.repro.tables import load_results

    p = preset_values("mini")
    rule = budget.select_from_results(load_results(results_dir("mini")), p)
    assert p["distill_steps"] == rule["updates"]
    for key, value in budget.SCHEDULES[rule["schedule"]].items():
        assert p[key] == value, key
    runs = Path(__file__).parents[1] / "papermill_runs"
    for row in ("cd", "gan", "rf", "bi"):
        replicas = {f.stem for f in runs.glob(f"table4_{row}_s*.yaml")}
        assert replicas == {f"table4_{row}_s{k}" for k in range(1, rule["table4_seeds"])}, row


def test_bank_check_takes_the_smallest_claimed_difference():
    rows = []
    for draw, noise in enumerate((0.0, 0.4, -0.4, 0.2)):
        for method, nfe, value in (("cd", 1, 20.0), ("gan", 1, 12.0), ("cd", 2, 10.0),
                                   ("cd", 16, 11.0 + noise)):
            rows.append(dict(method=method, schedule="constant", step=100, nfe=nfe, draw=draw,
                             metric="fid", value=value + noise))
    # cd 16 - cd 2 = +1 + noise: the smallest claimed difference the rows can measure
    check = budget.bank_check(rows, "constant", 100)
    assert check["difference"] == "cd NFE 16 - cd NFE 2"
    assert check["mean"] == pytest.approx(1.05) and check["draws"] == 4
    # sd of the draws' offsets (0, .4, -.4, .2) is 0.3416, over 4 draws: SE 0.1708
    assert check["se"] == pytest.approx(0.1708, rel=1e-3) and check["enough"]
    rows = [{**r, "value": r["value"] + 3 * r["draw"]} if r["nfe"] == 16 else r for r in rows]
    assert not budget.bank_check(rows, "constant", 100)["enough"]  # noisier: more draws
    with pytest.raises(ValueError, match="no claimed difference"):
        budget.bank_check(rows, "cosine", 100)
