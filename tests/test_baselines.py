"""Table 3's rectified-flow baseline: pairs, reflow loss, distil stage, caching, notebook 06."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest
import torch
from torch import nn

from scflow import baselines
from scflow.evaluate import bank_noise
from scflow.nets import build_velocity_net
from scflow.repro.configs import baseline_config
from scflow.repro.presets import preset_values

SHAPE = (4, 8, 8)


class Linear(nn.Module):
    """Closed-form velocity ``v(z, t) = a * z`` (one parameter, so it is an nn.Module net)."""

    def __init__(self, a: float = 1.0) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, z, t, cond=None):
        return self.a * z


class StraightLine(nn.Module):
    """The exact velocity of the straight path from 0 to z1: ``v(z_t, t) = z_t / t = z1``."""

    def forward(self, z, t, cond=None):
        return z / t.reshape(-1, 1, 1, 1)


def test_pairs_shapes_determinism_and_euler_values():
    z1, z0 = baselines.generate_pairs(Linear(), 6, SHAPE, euler_steps=4, seed=3, batch_size=4)
    assert z1.shape == z0.shape == (6, *SHAPE)
    # Euler on dz/dt = z from t = 1 to 0 in N steps: z0 = z1 * (1 - 1/N)^N
    torch.testing.assert_close(z0, z1 * (1 - 1 / 4) ** 4)
    again = baselines.generate_pairs(Linear(), 6, SHAPE, euler_steps=4, seed=3)
    torch.testing.assert_close(again[0], z1)
    torch.testing.assert_close(again[1], z0)
    other = baselines.generate_pairs(Linear(), 6, SHAPE, euler_steps=4, seed=4)
    assert not torch.equal(other[0], z1)
    # never the evaluation noise: the baseline must not be trained on its test noise
    assert not any(torch.equal(bank_noise(k, 6, SHAPE), z1) for k in range(8))


def test_reflow_loss_is_zero_on_the_straight_velocity_and_eq1_otherwise():
    z1 = torch.randn(5, *SHAPE)
    z0 = torch.zeros_like(z1)  # straight lines from 0 to z1: z_t = t z1, velocity z1
    t = torch.rand(5) * 0.9 + 0.1
    assert baselines.reflow_loss(StraightLine(), z0, z1, t).item() < 1e-10
    # v = 0: the loss is the mean squared target velocity || z1 - z0_hat ||^2
    z0 = torch.randn_like(z1)
    expected = (z1 - z0).pow(2).mean()
    torch.testing.assert_close(baselines.reflow_loss(Linear(0.0), z0, z1, t), expected)


def test_distill_loss_regresses_the_one_step_output():
    z1, z0 = torch.randn(3, *SHAPE), torch.randn(3, *SHAPE)
    # f(z1, 1) = z1 - a z1; with a = 0 it is z1
    torch.testing.assert_close(baselines.distill_loss(Linear(0.0), z0, z1), (z1 - z0).pow(2).mean())
    # a = 1 - c with z0 = c z1 gives f(z1, 1) = z0 exactly
    assert baselines.distill_loss(Linear(0.75), 0.25 * z1, z1).item() < 1e-12


def test_distil_stage_lowers_its_loss_and_leaves_its_init_alone():
    torch.manual_seed(0)
    init = build_velocity_net("unet_tiny", sample_size=8, channels=4)
    before = [p.clone() for p in init.parameters()]
    z1 = torch.randn(32, *SHAPE)
    z0 = 0.5 * z1 + 0.1 * torch.randn_like(z1)
    start = baselines.distill_loss(init, z0, z1).item()
    net, losses = baselines.train_on_pairs(init, z1, z0, baselines.distill_loss, steps=10,
                                           batch_size=8, lr=3e-3, seed=0)
    assert len(losses) == 10 and all(math.isfinite(x) for x in losses)
    assert baselines.distill_loss(net, z0, z1).item() < 0.5 * start
    assert all(torch.equal(a, b) for a, b in zip(before, init.parameters(), strict=True))
    assert not any(p.requires_grad for p in net.parameters())


def test_stage_cache_keys_chain():
    cfg = baseline_config(preset_values("smoke"))
    teacher = {"kind": "teacher", "x": 1}
    key = baselines.stage_cache_config
    more = replace(cfg, distill_steps=cfg.distill_steps + 1)
    assert key(more, teacher, "reflow") == key(cfg, teacher, "reflow")
    assert key(more, teacher, "distill") != key(cfg, teacher, "distill")
    fewer_pairs = replace(cfg, pairs=5)
    assert key(fewer_pairs, teacher, "reflow") != key(cfg, teacher, "reflow")
    assert key(cfg, {"kind": "teacher", "x": 2}, "distill") != key(cfg, teacher, "distill")
    with pytest.raises(ValueError, match="unknown stage"):
        key(cfg, teacher, "pairs")


def test_baseline_config_refuses_bad_values():
    with pytest.raises(ValueError, match="rectified_pairs"):
        baselines.BaselineConfig(pairs=0)
    with pytest.raises(ValueError, match="rectified_lr"):
        baselines.BaselineConfig(lr=0.0)


def test_get_rectified_flow_trains_once_then_loads_from_cache():
    cfg = baselines.BaselineConfig(pairs=8, euler_steps=2, reflow_steps=2, distill_steps=2,
                                   batch_size=4)
    teacher = build_velocity_net("unet_tiny", sample_size=8, channels=4).eval()
    first = baselines.get_rectified_flow(cfg, teacher, {"kind": "test-teacher"}, SHAPE)
    assert first["hits"] == {"pairs": False, "reflow": False, "distill": False}
    second = baselines.get_rectified_flow(cfg, teacher, {"kind": "test-teacher"}, SHAPE)
    assert second["hits"] == {"pairs": True, "reflow": True, "distill": True}
    z = torch.randn(2, *SHAPE)
    t = torch.ones(2)
    for name in ("rectified", "rectified+distill"):
        torch.testing.assert_close(second[name](z, t), first[name](z, t))
    assert len(second["loss_reflow"]) == 2 and len(second["loss_distill"]) == 2


@pytest.mark.slow
def test_notebook_06_smoke_run_and_report(tmp_path, monkeypatch):
    """Notebook 06 on the smoke preset writes the Table 3 rows; notebook 07 then reports them."""
    from scflow.repro.batch import run_notebook
    from scflow.repro.results import COLUMNS

    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SCFLOW_RUNS", str(tmp_path / "runs"))
    df = pd.read_csv(run_notebook("06_baselines", run_name="table3_rectified"))
    assert list(df.columns) == list(COLUMNS)
    assert set(df.preset) == {"smoke"} and df.config_hash.nunique() == 1
    nfes = set(preset_values("smoke")["nfe_list"])
    for method in ("rectified", "rectified+distill"):
        fid = df[(df.method == method) & (df.metric == "fid")]
        assert set(fid.nfe.astype(int)) == nfes and (fid.value >= 0).all()
        assert (df[(df.method == method) & (df.metric == "loss")].value > 0).all()
    assert not (df.method == "teacher").any()  # the teacher rows are notebook 01's, not rerun
    figures = tmp_path / "results" / "smoke" / "figures"
    assert (figures / "table3_rectified_fig1_row.png").exists()
    from scflow.repro.samples import load_samples

    samples = load_samples(tmp_path / "results" / "smoke", "table3_rectified")
    assert set(samples.method) == {"rectified", "rectified+distill"}
    assert set(samples.nfe) == nfes and samples.images.shape[0] == 2 * len(nfes)
    # the report on this partial grid: every other run is missing, nothing crashes
    run_notebook("07_tables_and_figures", run_name="zz_report")
    text = (tmp_path / "results" / "smoke" / "REPORT.md").read_text()
    assert "| LFM + Rectified + Distill | `table3_rectified` |" in text
    assert "missing" in text and (figures / "report_fig1.png").exists()


@pytest.mark.parametrize("preset", ["mini", "gpu"])
def test_the_baseline_keeps_the_papers_compute_proportions(preset):
    """Reflow 5/12 and distillation 1/12 of SCFlow's updates (2.5M and 0.5M of 6.0M examples in
    the paper, docs/METHOD.md §7.5), whatever budget the preset's students get."""
    p = preset_values(preset)
    assert p["rectified_reflow_steps"] == round(5 / 12 * p["distill_steps"])
    assert p["rectified_distill_steps"] == round(1 / 12 * p["distill_steps"])
    assert p["rectified_batch"] == p["distill_batch"]
