"""Notebooks 02-05 as lessons: their own cells show the configuration, the Distiller, sampling and
scoring; their prose carries no hand-typed result numbers (the committed ones are printed from
the CSVs); every notebook that computes pins its threads as the runner does."""

from __future__ import annotations

import re

import nbformat
import pytest
import torch

from scflow.repro.committed import committed_table, show_committed
from scflow.repro.methods import TABLE4
from scflow.repro.notebooks import notebook_path, parameters_cell
from scflow.repro.results import write_results

LESSONS = [m.notebook for m in TABLE4.values()]
COMPUTING = ["01_latent_flow_matching", *LESSONS, "06_baselines", "08_text_to_image",
             "09_training_budget"]


def cells(notebook: str, kind: str) -> list[str]:
    nb = nbformat.read(notebook_path(notebook), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == kind]


@pytest.mark.parametrize("notebook", LESSONS)
def test_the_lesson_shows_algorithm_1_in_its_own_cells(notebook):
    code = "\n".join(cells(notebook, "code"))
    for call in ("distill_config(P,", "Distiller(", "train_resumable(distiller", "evaluate_bank(",
                 "P.eval_draws", "rows_table(rows)", "loss_figure(history", "show_committed("):
        assert call in code, f"{notebook}: no {call}...) in its cells"
    assert "run_student" not in code


@pytest.mark.parametrize("notebook", LESSONS)
def test_no_hand_typed_results_or_times_in_the_prose(notebook):
    """Numbers of our results and run times come from the CSVs; the prose may quote the
    paper's numbers, saying that they are the paper's."""
    for text in cells(notebook, "markdown"):
        for paragraph in text.split("\n\n"):
            decimals = re.findall(r"(?<![\w.])\d+\.\d+", paragraph)
            assert not decimals or "paper" in paragraph, (notebook, decimals, paragraph[:200])
            assert not re.search(r"\d\s*(minutes|min\b|seconds|s per)", paragraph), paragraph[:200]


@pytest.mark.parametrize("notebook", COMPUTING)
def test_every_computing_notebook_pins_its_threads(notebook):
    assert parameters_cell(notebook_path(notebook))["threads"] == 1
    assert "pin_threads(P.threads)" in "\n".join(cells(notebook, "code"))


def test_pin_threads_sets_torch_and_blas():
    from threadpoolctl import threadpool_info, threadpool_limits

    from scflow.repro.experiment import pin_threads

    before = torch.get_num_threads()
    with threadpool_limits(limits=None):  # restores the BLAS pools afterwards
        try:
            pin_threads(1)
            assert torch.get_num_threads() == 1
            assert all(pool["num_threads"] == 1 for pool in threadpool_info())
        finally:
            torch.set_num_threads(before)


def _csv(folder, run, method, values, seed=0):
    rows = []
    for nfe, fid in values.items():
        for metric, value in (("fid", fid), ("std_ratio", 1.0)):
            rows.append({"run": run, "notebook": "nb", "preset": "mini", "method": method,
                         "nfe": nfe, "metric": metric, "value": value, "seed": seed,
                         "n_samples": 1000, "config_hash": "abc", "device": "cpu",
                         "wall_time_s": 60.0 * nfe})
    folder.mkdir(parents=True, exist_ok=True)
    write_results(rows, folder / f"{run}.csv", {})  # sealed, as the runner writes them


def test_committed_numbers_beside_the_papers(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path))
    _csv(tmp_path / "mini", "table4_cd", "cd", {1: 22.5, 2: 8.75})
    table = committed_table("table4_cd", "mini")
    assert table.loc[("cd", 1), "fid (ours)"] == 22.5
    assert table.loc[("cd", 2), "fid (paper, Table 4 'CD')"] == 23.56  # scflow/repro/data
    assert table.loc[("cd", 1), "fid (paper, Table 3 'LFM + CD')"] == 41.34
    shown = show_committed("02_naive_consistency_distillation", "mini", fallback="table4_cd")
    assert shown.equals(table)
    out = capsys.readouterr().out
    assert "results/mini/table4_cd.csv" in out and "2.0 min" in out  # the last row's wall time
    assert show_committed("table4_gan", "mini") is None
    assert "no committed mini/table4_gan.csv" in capsys.readouterr().out


def test_a_run_without_a_paper_row_shows_ours_only(tmp_path, monkeypatch):
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path))
    _csv(tmp_path / "mini", "table4_cd_s1", "cd", {1: 20.0}, seed=1)
    table = committed_table("table4_cd_s1", "mini")
    assert list(table.columns) == ["fid (ours)", "std_ratio (ours)"]
