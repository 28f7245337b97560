"""The tidy results CSV: schema, metric names, atomic write, locations, figures."""

from __future__ import annotations

import csv
import math
import re
import subprocess

import pytest

import scflow.repro.results as results
from scflow.repro.params import resolve_notebook_params
from scflow.repro.results import (
    COLUMNS,
    EXTRA_METRICS,
    ResultsWriter,
    read_config_hash,
    write_results,
)


@pytest.fixture
def P(tmp_path, monkeypatch):
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "results"))
    return resolve_notebook_params("01_nb", {"preset": "smoke", "run_name": "r1", "seed": 3,
                                             "fid_backend": "digits", "device": "auto"})


def read_rows(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_schema_and_run_level_columns(P, tmp_path):
    with ResultsWriter(P, device="cpu") as w:
        w.add("loss", 0.5, method="teacher", step=10)
        w.add("sec_per_image", 0.01, method="scflow", nfe=2, n_samples=64, seed=7)
    assert w.path == tmp_path / "results" / "smoke" / "r1.csv"
    header, rows = read_rows(w.path)
    assert tuple(header) == COLUMNS
    assert [r["metric"] for r in rows] == ["loss", "sec_per_image"]
    first, second = rows
    assert (first["run"], first["notebook"], first["preset"]) == ("r1", "01_nb", "smoke")
    assert (first["step"], first["nfe"], first["seed"]) == ("10", "", "3")
    assert (second["nfe"], second["n_samples"], second["seed"]) == ("2", "64", "7")
    assert first["config_hash"] == P.config_hash == read_config_hash(w.path)
    assert first["feature_backend"] == "digits" and first["device"] == "cpu"
    assert re.fullmatch(r"[0-9a-f]{4,}(\+dirty)?|unknown", first["git_sha"])
    assert float(second["wall_time_s"]) >= float(first["wall_time_s"]) >= 0


def test_image_metrics_come_from_scflow_metrics():
    from scflow.metrics import METRIC_DOCS

    assert {"fid", "precision", "recall"} <= set(METRIC_DOCS)
    assert set(results.all_metrics()) == set(METRIC_DOCS) | set(EXTRA_METRICS)


def test_unknown_metric_and_bad_values_rejected(P, tmp_path):
    w = ResultsWriter(P)
    with pytest.raises(ValueError, match="unknown metric 'fidd'"):
        w.add("fidd", 1.0, method="teacher")
    meta = {"run": "r", "preset": "mini"}
    for row in ({"metric": "nope", "value": 1.0}, {"metric": "loss", "value": "1.0"},
                {"metric": "loss", "value": 1.0, "colour": "red"}):
        with pytest.raises(ValueError):
            write_results([row], tmp_path / "x.csv", meta)
    with pytest.raises(ValueError, match="no result rows"):
        write_results([], tmp_path / "x.csv", meta)
    assert not (tmp_path / "x.csv").exists()


def test_non_finite_kept_and_flagged(P):
    w = ResultsWriter(P, device="cpu")
    with pytest.warns(UserWarning, match="flagged"):
        w.add("loss", float("nan"), method="student", step=1)
    w.add("loss", 1.0, method="student", step=2)
    _, rows = read_rows(w.write())
    assert math.isnan(float(rows[0]["value"])) and rows[0]["flag"] == "non-finite"
    assert rows[1]["flag"] == ""


def test_no_csv_when_the_run_fails(P, tmp_path):
    with pytest.raises(RuntimeError), ResultsWriter(P, device="cpu") as w:
        w.add("loss", 1.0, method="teacher")
        raise RuntimeError("training diverged")
    assert not w.path.exists()


def test_no_partial_csv_when_writing_fails(P, monkeypatch):
    w = ResultsWriter(P, device="cpu")
    w.add("loss", 1.0, method="teacher")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("scflow.cache.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        w.write()
    assert not w.path.exists()
    assert list(w.path.parent.iterdir()) == []  # the temp file is gone too


def test_results_locations(tmp_path, monkeypatch):
    monkeypatch.delenv("SCFLOW_RESULTS", raising=False)
    assert results.results_dir("mini") == results.REPO_ROOT / "results" / "mini"
    with pytest.raises(ValueError, match="unknown preset"):
        results.results_dir("huge")
    # smoke numbers never reach the tables: results/smoke/ is git-ignored, results/mini/ is not
    ignored = subprocess.run(["git", "check-ignore", "-q", "results/smoke/x.csv"],
                             cwd=results.REPO_ROOT).returncode
    kept = subprocess.run(["git", "check-ignore", "-q", "results/mini/x.csv"],
                          cwd=results.REPO_ROOT).returncode
    assert (ignored, kept) == (0, 1)


def test_git_sha_outside_git_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "REPO_ROOT", tmp_path)
    assert results.git_sha() == "unknown"


def test_save_figure_writes_png(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path))
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [1, 0])
    path = results.save_figure(fig, "01_curve", "smoke")
    plt.close(fig)
    assert path == tmp_path / "smoke" / "figures" / "01_curve.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_git_sha_override(monkeypatch):
    """A copy of the checkout without .git names its commit through SCFLOW_GIT_SHA."""
    from scflow.repro.results import git_sha

    monkeypatch.setenv("SCFLOW_GIT_SHA", "0123abc")
    assert git_sha() == "0123abc"
    monkeypatch.delenv("SCFLOW_GIT_SHA")
    assert git_sha() != "0123abc"
