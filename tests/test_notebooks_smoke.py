"""Tier 2: every notebook executed headless by papermill on the smoke preset, asserting on its CSV.

The notebooks share one cache for the session (autoencoder, teacher, classifier are trained once,
by the first notebook), and write their results and executed copies into temporary folders.
"""

import math
from pathlib import Path

import pandas as pd
import pytest

from scflow.repro.batch import run_notebook
from scflow.repro.presets import preset_values
from scflow.repro.results import COLUMNS
from scflow.repro.samples import load_samples

pytestmark = pytest.mark.slow

SMOKE_NFE = [1, 2, 4]  # the smoke preset's nfe_list
IMAGE_METRICS = {"fid", "precision", "recall", "std_ratio", "clip_fraction"}


@pytest.fixture(scope="module")
def shared_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("notebooks")
    return {"SCFLOW_CACHE": str(root / "cache"), "SCFLOW_RESULTS": str(root / "results"),
            "SCFLOW_RUNS": str(root / "runs")}


@pytest.fixture
def env(shared_dirs, monkeypatch):
    for k, v in shared_dirs.items():
        monkeypatch.setenv(k, v)


def _check_nfe_table(df: pd.DataFrame, method: str) -> None:
    assert list(df.columns) == list(COLUMNS)
    sub = df[df.method == method]
    assert set(sub.nfe.dropna().astype(int)) == set(SMOKE_NFE)
    for nfe in SMOKE_NFE:
        names = set(sub[sub.nfe == nfe].metric)
        assert IMAGE_METRICS <= names, (nfe, names)
        if nfe != 1:
            assert {"consistency_rmse", "consistency_feat"} <= names
    vals = sub[sub.metric.isin(IMAGE_METRICS)].value
    assert all(math.isfinite(v) for v in vals)
    assert (sub[sub.metric == "fid"].value >= 0).all()
    assert sub[sub.metric.isin(["precision", "recall"])].value.between(0, 1).all()
    assert set(df.preset) == {"smoke"} and df.config_hash.nunique() == 1


def _check_samples(csv: Path, method: str) -> None:
    """The run kept its first n_show samples per NFE next to its CSV (the report's figures)."""
    samples = load_samples(csv.parent, csv.stem)
    assert samples is not None, f"no samples file for {csv.stem}"
    assert samples.run == csv.stem and samples.nfe == tuple(SMOKE_NFE)
    assert set(samples.method) == {method} and samples.prompts == ()
    assert samples.images.shape == (len(SMOKE_NFE), preset_values("smoke")["n_show"], 32, 32, 1)
    assert samples.images.dtype == "uint8" and samples.images.std() > 0


def test_01_latent_flow_matching(env):
    csv = run_notebook("01_latent_flow_matching")
    df = pd.read_csv(csv)
    _check_nfe_table(df, "teacher")
    _check_samples(Path(csv), "teacher")
    assert (df.metric == "recon_mse").sum() == 1
    assert (df[df.metric == "loss"].value > 0).all()
    # every sample metric on each noise set of the evaluation bank, the converged Heun reference
    # and the two floors of real images
    draws = preset_values("smoke")["eval_draws"]
    fid = df[df.metric == "fid"]
    for method in ("teacher", "teacher_heun", "memoriser", "novel_real", "autoencoder"):
        assert sorted(fid[fid.method == method].draw.unique()) == list(range(draws)), method
    heun = fid[fid.method == "teacher_heun"]
    assert set(heun.nfe.astype(int)) == set(preset_values("smoke")["teacher_heun_nfe"])
    assert (df[df.method == "teacher"].groupby(["nfe", "metric"]).size() == draws).all()


@pytest.mark.parametrize("notebook,method,terms", [
    ("02_naive_consistency_distillation", "cd", {"loss_cd"}),
    ("03_truncation_and_gan", "cd+trunc+gan", {"loss_cd", "loss_gan"}),
    ("04_reflow_loss", "cd+trunc+gan+rf", {"loss_cd", "loss_gan", "loss_rf"}),
    ("05_bidirectional_loss", "scflow", {"loss_cd", "loss_gan", "loss_rf", "loss_bi"}),
])
def test_distillation_notebooks(env, notebook, method, terms):
    csv = run_notebook(notebook)
    df = pd.read_csv(csv)
    _check_nfe_table(df, method)
    _check_samples(Path(csv), method)
    # exactly the loss terms of this notebook's method were trained (and logged)
    assert {m for m in df.metric if m.startswith("loss_")} == terms


def test_09_training_budget(env):
    df = pd.read_csv(run_notebook("09_training_budget"))
    fid = df[df.metric == "fid"]
    p = preset_values("smoke")
    # every (method, schedule) evaluated at every budget, NFE and draw of the smoke preset
    assert set(fid.method) == {f"{m} {s}" for m in p["study_methods"]
                               for s in p["study_schedules"]}
    assert set(fid.step.astype(int)) == set(p["study_budgets"])
    assert len(fid) == (len(p["study_methods"]) * len(p["study_schedules"])
                        * len(p["study_budgets"]) * len(SMOKE_NFE) * p["eval_draws"])
    assert set(df.seed) == {p["study_seed"]}  # the study's own seed, never a reported one
    assert (df[df.metric == "eval_seconds"].value > 0).all()
    assert (df[df.metric == "sec_per_update"].value > 0).all()
