"""The batch runner: validation before any execution, dedupe, resume, failure reporting."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from scflow.repro import batch, execute
from scflow.repro import plan as planner
from scflow.repro import run as runner
from scflow.repro.notebooks import parameters_cell
from scflow.repro.params import resolve_notebook_params
from scflow.repro.presets import PRESETS
from scflow.repro.results import ResultsWriter, read_config_hash

PARAMS_CELL = 'preset = "mini"  # preset\nrun_name = ""  # run\nseed = 0  # seed\nn_eval = 1000  # n\n'
RESOLVE = "import scflow.repro.params, scflow.repro.results\n" \
          "P = scflow.repro.params.notebook_params({name!r}, globals())\n"
WRITE = "import sys\nprint('EXE', sys.executable)\n" \
        "with scflow.repro.results.ResultsWriter(P, device='cpu') as r:\n" \
        "    r.add('loss', float(P.n_eval), method='teacher', step=P.seed)\n"


def make_notebook(path: Path, body: str) -> Path:
    """A tiny notebook: the parameters cell, then ``body`` (``{name}`` = the notebook's stem)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(PARAMS_CELL, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body.format(name=path.stem))]
    nbformat.write(nb, path)
    return path


def make_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Notebooks, run files, results and executed notebooks all under tmp_path."""
    nbs, ymls = tmp_path / "nbs", tmp_path / "runs_yaml"
    nbs.mkdir()
    ymls.mkdir()
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SCFLOW_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SCFLOW_NOTEBOOKS", str(nbs))
    make_notebook(nbs / "nb_ok.ipynb", RESOLVE + WRITE)
    make_notebook(nbs / "nb_fail.ipynb", RESOLVE + "raise ValueError('boom')\n")
    return tmp_path


@pytest.fixture
def fake_papermill(monkeypatch):
    """Replace papermill by an in-process simulation of nb_ok; records the runs executed."""
    calls: list[str] = []

    def execute_notebook(input_path, output_path, parameters, **kwargs):
        assert kwargs["kernel_name"] == "python3" and kwargs["progress_bar"] is False
        values = {**parameters_cell(input_path), **parameters}
        P = resolve_notebook_params(Path(input_path).stem, values)
        with ResultsWriter(P, device="cpu") as r:
            r.add("loss", float(P.n_eval), method="teacher")
        nbformat.write(nbformat.v4.new_notebook(), output_path)
        calls.append(parameters["run_name"])

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    return calls


def main(*args) -> int:
    return runner.main([str(a) for a in args])


# --- validation happens before anything runs ---------------------------------------------------

@pytest.mark.parametrize("params, preset, expected", [
    ("{n_evl: 5}", "mini", ["'n_evl'", "did you mean 'n_eval'", "valid: n_eval, preset, "
                                                                "run_name, seed"]),
    ("{seed: zero}", "mini", ["'seed'", "expected int"]),
    ("{seed: -1}", "mini", ["'seed'", ">= 0"]),
    ("{n_eval: 2.5}", "mini", ["'n_eval'", "expected int"]),
    ("{}", "huge", ["unknown preset 'huge'"]),
    ("{preset: smoke}", "mini", ["--preset"]),
])
def test_invalid_runs_rejected_before_any_execution(env, fake_papermill, capsys, params,
                                                    preset, expected):
    make_yaml(env / "runs_yaml" / "a_good.yaml", "notebook: nb_ok\n")
    make_yaml(env / "runs_yaml" / "b_bad.yaml", f"notebook: nb_ok\nparameters: {params}\n")
    assert main(env / "runs_yaml", "--preset", preset) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err
    assert fake_papermill == []  # not even the valid file ran


def test_missing_notebook_and_unknown_top_level_key(env, fake_papermill, capsys):
    make_yaml(env / "runs_yaml" / "a.yaml", "notebook: nb_missing\n")
    make_yaml(env / "runs_yaml" / "b.yaml", "notebook: nb_ok\nparams: {seed: 1}\n")
    assert main(env / "runs_yaml") == 2
    err = capsys.readouterr().err
    assert "nb_missing" in err and "available: nb_fail, nb_ok" in err
    assert "unknown key 'params'" in err
    assert fake_papermill == []


def test_yaml_float_written_as_text_gets_a_hint(env):
    make_notebook(env / "nbs" / "nb_lr.ipynb", "pass")
    nb = nbformat.read(env / "nbs" / "nb_lr.ipynb", as_version=4)
    nb.cells[0].source += "teacher_lr = 0.0002  # lr\n"
    nbformat.write(nb, env / "nbs" / "nb_lr.ipynb")
    make_yaml(env / "runs_yaml" / "a.yaml", "notebook: nb_lr\nparameters: {teacher_lr: 1e-4}\n")
    with pytest.raises(planner.RunConfigError, match="write it with a dot"):
        planner.plan([env / "runs_yaml"])


def test_override_equal_to_mini_is_explicit_under_another_preset(env):
    make_yaml(env / "runs_yaml" / "a.yaml", "notebook: nb_ok\nparameters: {n_eval: 1000}\n")
    (run,) = planner.plan([env / "runs_yaml"], "smoke")
    assert PRESETS["mini"]["n_eval"] == 1000 != PRESETS["smoke"]["n_eval"]
    assert run.params.n_eval == 1000 and not run.notes  # the file set it: honoured
    # the kernel resolves the same way: the job names the file's keys, the env carries them
    job = execute._job(run)
    assert job["explicit"] == ["n_eval"]
    before = os.environ.get("SCFLOW_EXPLICIT_PARAMS")
    with execute._kernel_env(env / "nbs", job["explicit"]):
        assert os.environ["SCFLOW_EXPLICIT_PARAMS"] == "n_eval"
    assert os.environ.get("SCFLOW_EXPLICIT_PARAMS") == before


# --- dedupe and resume --------------------------------------------------------------------------

def test_identical_configurations_run_once(env, fake_papermill):
    make_yaml(env / "runs_yaml" / "a.yaml", "notebook: nb_ok\nparameters: {seed: 1}\n")
    make_yaml(env / "runs_yaml" / "b.yaml", "# same as a\nnotebook: nb_ok.ipynb\n"
                                            "parameters: {seed: 1}\n")
    make_yaml(env / "runs_yaml" / "c.yaml", "notebook: nb_ok\nparameters: {seed: 2}\n")
    assert main(env / "runs_yaml") == 0
    assert fake_papermill == ["a", "c"]
    a, b = (env / "results" / "mini" / f"{n}.csv" for n in "ab")
    assert read_config_hash(a) == read_config_hash(b)
    with open(b, newline="") as fh:
        assert [row["run"] for row in csv.DictReader(fh)] == ["b"]
    assert "alias of a" in (env / "runs" / "mini" / "b.log").read_text()


def test_resume_skips_existing_results_and_replaces_changed_ones_with_force(env, fake_papermill,
                                                                           capsys):
    make_yaml(env / "runs_yaml" / "a.yaml", "notebook: nb_ok\nparameters: {seed: 1}\n")
    make_yaml(env / "runs_yaml" / "b.yaml", "notebook: nb_ok\nparameters: {seed: 2}\n")
    assert main(env / "runs_yaml") == 0
    assert main(env / "runs_yaml") == 0
    assert fake_papermill == ["a", "b"]  # second batch: everything skipped
    make_yaml(env / "runs_yaml" / "b.yaml", "notebook: nb_ok\nparameters: {seed: 3}\n")
    capsys.readouterr()
    assert main(env / "runs_yaml") == 2  # b.csv holds another configuration: kept
    assert "b.csv holds the results of notebook nb_ok" in capsys.readouterr().err
    assert fake_papermill == ["a", "b"]
    assert main(env / "runs_yaml" / "b.yaml", "--force") == 0
    assert fake_papermill == ["a", "b", "b"]
    assert main(env / "runs_yaml", "--force") == 0
    assert fake_papermill == ["a", "b", "b", "a", "b"]
    assert main(env / "runs_yaml", "--preset", "smoke") == 0  # another preset, another file
    assert fake_papermill[-2:] == ["a", "b"]


def test_list_and_dry_run_execute_nothing(env, fake_papermill, capsys):
    make_yaml(env / "runs_yaml" / "a.yaml", "# Table 1, row 3\nnotebook: nb_ok\n")
    assert main(env / "runs_yaml", "--list") == 0
    assert main(env / "runs_yaml", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "Table 1, row 3" in out and "to run" in out and "'run_name': 'a'" in out
    assert fake_papermill == []


# --- real papermill: a failure does not stop the batch -----------------------------------------

@pytest.mark.slow
def test_failed_run_reported_others_complete(env, capsys):
    make_yaml(env / "runs_yaml" / "a_fail.yaml", "notebook: nb_fail\n")
    make_yaml(env / "runs_yaml" / "b_ok.yaml", "notebook: nb_ok\nparameters: {n_eval: 7}\n")
    runs = planner.plan([env / "runs_yaml"], "smoke")
    assert main(env / "runs_yaml", "--preset", "smoke") == 1
    out, err = capsys.readouterr()
    assert "[1/2] a_fail" in out and "[2/2] b_ok" in out
    log = env / "runs" / "smoke" / "a_fail.log"
    assert "a_fail" in err and str(log) in err and "boom" in err
    assert "ValueError" in log.read_text()
    csv_ok = env / "results" / "smoke" / "b_ok.csv"
    assert read_config_hash(csv_ok) == runs[1].params.config_hash  # notebook and runner agree
    with open(csv_ok, newline="") as fh:
        row = next(csv.DictReader(fh))
    assert (row["value"], row["preset"], row["run"]) == ("7.0", "smoke", "b_ok")
    assert (env / "runs" / "smoke" / "b_ok.ipynb").exists()
    # the executed notebook is kept beside the results, outputs in, run-specific metadata out
    published = nbformat.read(env / "results" / "smoke" / "notebooks" / "b_ok.ipynb", 4)
    assert "papermill" not in published.metadata
    outputs = [o for c in published.cells if c.cell_type == "code" for o in c.outputs]
    assert any("EXE" in o.get("text", "") for o in outputs)
    assert all(c.execution_count is None for c in published.cells if c.cell_type == "code")
    assert not (env / "results" / "smoke" / "notebooks" / "a_fail.ipynb").exists()
    # the kernel is this venv's python, and cell output reaches the log
    assert f"EXE {sys.executable}" in (env / "runs" / "smoke" / "b_ok.log").read_text()
    assert sorted(p.name for p in (env / "nbs").iterdir()) == ["nb_fail.ipynb", "nb_ok.ipynb"]
    # a run that writes no CSV (the report) keeps its executed notebook under runs/ only
    make_notebook(env / "nbs" / "nb_nocsv.ipynb", RESOLVE)
    make_yaml(env / "runs_yaml" / "c_nocsv.yaml", "notebook: nb_nocsv\n")
    assert main(env / "runs_yaml" / "c_nocsv.yaml", "--preset", "smoke") == 0
    assert (env / "runs" / "smoke" / "c_nocsv.ipynb").exists()
    assert not (env / "results" / "smoke" / "notebooks" / "c_nocsv.ipynb").exists()


def test_run_notebook_helper(env, fake_papermill):
    csv_path = batch.run_notebook("nb_ok", {"seed": 4})
    assert csv_path == env / "results" / "smoke" / "nb_ok.csv" and csv_path.exists()
    batch.run_notebook("nb_ok", {"seed": 4})  # no resume: runs again
    assert fake_papermill == ["nb_ok", "nb_ok"]
    with pytest.raises(planner.RunConfigError, match="'sed'"):
        batch.run_notebook("nb_ok", {"sed": 4})


# --- parallel batches (--jobs): each notebook in its own process ------------------------------

# Proof of overlap that does not depend on timing: each run leaves a marker, then waits (up to
# 60 s) for both runs' markers; it records 1 if it saw the other one while it was running.
TOGETHER = RESOLVE + """import os, pathlib, time
marks = pathlib.Path(os.environ["SCFLOW_RESULTS"]) / "marks"
marks.mkdir(parents=True, exist_ok=True)
(marks / P.run_name).touch()
deadline = time.time() + 60
while len(list(marks.iterdir())) < 2 and time.time() < deadline:
    time.sleep(0.1)
with scflow.repro.results.ResultsWriter(P, device='cpu') as r:
    r.add('loss', float(len(list(marks.iterdir())) >= 2), method='teacher')  # 1: saw the other
"""


@pytest.mark.slow
def test_parallel_jobs_overlap_dedupe_fail_and_barrier(env, capsys):
    """Two at once: runs overlap, a twin of a run in flight becomes its alias, a failure is
    reported with the others completing, and the barrier run starts after everything else."""
    make_notebook(env / "nbs" / "nb_together.ipynb", TOGETHER)
    make_yaml(env / "runs_yaml" / "a.yaml", "notebook: nb_together\nparameters: {n_eval: 5}\n")
    make_yaml(env / "runs_yaml" / "b.yaml", "notebook: nb_together\nparameters: {n_eval: 4}\n")
    make_yaml(env / "runs_yaml" / "c_twin.yaml", "notebook: nb_together\nparameters: {n_eval: 5}\n")
    make_yaml(env / "runs_yaml" / "d_fail.yaml", "notebook: nb_fail\n")
    make_yaml(env / "runs_yaml" / "z_last.yaml", "notebook: nb_ok\nbarrier: true\n")
    assert main(env / "runs_yaml", "--preset", "smoke", "--jobs", "2") == 1
    out, err = capsys.readouterr()
    res = env / "results" / "smoke"

    def rows(name):
        with open(res / f"{name}.csv", newline="") as fh:
            return list(csv.DictReader(fh))

    assert rows("a")[0]["value"] == rows("b")[0]["value"] == "1.0", "a and b did not overlap"
    assert read_config_hash(res / "a.csv") == read_config_hash(res / "c_twin.csv")
    assert "c_twin (nb_together" in out and "same configuration as a, results copied" in out
    assert "d_fail" in err and "boom" in err and not (res / "d_fail.csv").exists()
    # the barrier run is started only after every other run has reported
    lines = out.splitlines()
    z_start = next(i for i, ln in enumerate(lines) if "z_last (nb_ok" in ln and "running" in ln)
    finished = [i for i, ln in enumerate(lines) if ": ok in " in ln or "FAILED" in ln]
    assert len(finished) == 4 and max(finished[:3]) < z_start < finished[3]


def test_jobs_must_be_positive(env, capsys):
    make_yaml(env / "runs_yaml" / "a.yaml", "notebook: nb_ok\n")
    assert main(env / "runs_yaml", "--jobs", "0") == 2
    assert "--jobs" in capsys.readouterr().err


def test_barrier_must_be_boolean(env, capsys):
    make_yaml(env / "runs_yaml" / "a.yaml", "notebook: nb_ok\nbarrier: yes please\n")
    assert main(env / "runs_yaml") == 2
    assert "barrier" in capsys.readouterr().err
