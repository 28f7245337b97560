"""``--verify``: committed runs rerun from scratch, every value compared with the committed CSV."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
from pathlib import Path

import papermill
import pytest

from scflow import provenance
from scflow.repro import run as runner
from scflow.repro.csvfile import sealed_csv
from scflow.repro.results import DATA_COLUMNS
from scflow.repro.verify import MetricDiff, compare_csv, rel_diff

ROOT = Path(__file__).resolve().parents[1]
FIELDS = list(DATA_COLUMNS)  # a full results header (sealed by _write)


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    full = [{"run": "r", "seed": 0, "config_hash": "0123456789ab", "timestamp": "t", **r}
            for r in rows]
    path.write_bytes(sealed_csv(FIELDS, [[str(r.get(c, "")) for c in FIELDS] for r in full]))
    return path


ROWS = [{"method": "cd", "nfe": n, "metric": "fid", "value": v} for n, v in ((1, 20.5), (2, 9.25))]
ROWS += [{"method": "cd", "step": 1, "metric": "loss_cd", "value": 0.125},
         {"method": "cd", "nfe": 1, "metric": "sec_per_image", "value": 0.01}]


def test_rel_diff_is_zero_only_for_equal_values():
    assert rel_diff(1.5, 1.5) == 0.0 and rel_diff(math.nan, math.nan) == 0.0
    assert rel_diff(2.0, 1.0) == 0.5 and rel_diff(-1.0, 1.0) == 2.0
    assert rel_diff(1.0, 1.0 + 2 ** -52) > 0  # one ulp is a difference
    assert rel_diff(math.nan, 1.0) == math.inf and rel_diff(math.inf, 1.0) == math.inf


def test_compare_identical_perturbed_missing_and_wall_clock(tmp_path):
    a = _write(tmp_path / "a.csv", ROWS)
    same = compare_csv("r", a, _write(tmp_path / "b.csv", [{**r, "timestamp": "x"} for r in ROWS]))
    assert [(d.metric, d.n, d.n_equal, d.max_rel) for d in same] == [
        ("fid", 2, 2, 0.0), ("loss_cd", 1, 1, 0.0), ("sec_per_image", 1, 1, 0.0)]
    changed = [dict(r) for r in ROWS]
    changed[1]["value"] = 9.25 * (1 + 1e-9)
    changed[3]["value"] = 0.5  # wall clock: listed, never a failure
    del changed[2]  # the loss row is missing from the rerun
    diffs = {d.metric: d for d in compare_csv("r", a, _write(tmp_path / "c.csv", changed))}
    assert (diffs["fid"].n, diffs["fid"].n_equal) == (2, 1)
    assert diffs["fid"].max_rel == pytest.approx(1e-9, rel=1e-3)
    assert diffs["fid"].exceeds(0.0) and not diffs["fid"].exceeds(1e-6)
    assert diffs["loss_cd"].only_one_side == 1 and diffs["loss_cd"].exceeds(1.0)
    assert not diffs["sec_per_image"].exceeds(0.0)
    assert MetricDiff("r", "fid", 1, 1, 0.0).exceeds(0.0) is False


def test_note_says_what_the_committed_run_did_otherwise(tmp_path):
    from scflow.repro.verify import _protocol_note

    path = tmp_path / "c.csv"
    path.write_text("run,torch_threads,code_version\nr,1+2,0123abcd\n")
    note = _protocol_note(path)
    assert "torch threads 1+2 (rerun: 1)" in note and "code 0123abcd (rerun: " in note
    path.write_text(f"run,torch_threads,code_version\nr,1,{provenance.source_fingerprint()}\n")
    assert _protocol_note(path) is None
    path.write_text("run,value\nr,1\n")  # committed before these columns
    assert _protocol_note(path) is None


def test_runs_without_a_matching_committed_csv_are_not_verified(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "results"))
    yaml = ROOT / "papermill_runs" / "table4_cd.yaml"
    assert runner.main(["--verify", str(yaml), "--preset", "smoke"]) == 2
    assert "no committed" in capsys.readouterr().err
    _write(tmp_path / "results" / "smoke" / "table4_cd.csv", ROWS)  # another configuration
    assert runner.main(["--verify", str(yaml), "--preset", "smoke"]) == 2
    assert "holds configuration 0123456789ab" in capsys.readouterr().err
    assert runner.main(["--verify", str(yaml), "--preset", "smoke", "--tolerance", "-1"]) == 2


def test_allow_resume_other_code_reaches_the_notebooks(tmp_path, monkeypatch):
    """The runner's flag sets the variable the kernels (and load_checkpoint) read."""
    monkeypatch.setenv("SCFLOW_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SCFLOW_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv(provenance.ALLOW_OTHER_CODE_ENV, "0")  # restored after the test
    seen = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: seen.append(
        provenance.allowed_other_code()))
    yaml = str(ROOT / "papermill_runs" / "table4_cd.yaml")
    runner.main([yaml, "--preset", "smoke"])
    runner.main([yaml, "--preset", "smoke", "--allow-resume-other-code"])
    assert seen == [False, True]


@pytest.mark.slow
def test_verify_reruns_a_committed_smoke_run(tmp_path, monkeypatch, capsys):
    """Identical -> exit 0; one committed value perturbed (in a copy) -> exit 1, naming it."""
    yaml = str(ROOT / "papermill_runs" / "table4_cd.yaml")
    committed = tmp_path / "committed"
    for var, value in (("SCFLOW_RESULTS", committed), ("SCFLOW_RUNS", tmp_path / "runs"),
                       ("SCFLOW_CACHE", tmp_path / "cache"), ("OMP_NUM_THREADS", 1),
                       ("MKL_NUM_THREADS", 1)):
        monkeypatch.setenv(var, str(value))
    assert runner.main([yaml, "--preset", "smoke"]) == 0  # the "committed" run, one thread
    capsys.readouterr()
    assert runner.main(["--verify", yaml, "--preset", "smoke", "--record"]) == 0
    out = capsys.readouterr().out
    record = json.loads((committed / "smoke" / "verify.json").read_text())
    assert record["ok"] and record["runs"] == ["table4_cd"]
    assert {m["metric"] for m in record["metrics"]} >= {"fid", "loss_cd"}
    assert "shared artefacts shipped" in out and "verified: every compared value" in out
    # every FID (each NFE on each draw of the bank) equal, none differing
    n_fid = re.search(r"table4_cd +fid +(\d+) +\1 +0 +ok", out)
    assert n_fid, out
    assert os.environ["SCFLOW_RESULTS"] == str(committed)  # restored after the reruns

    path = committed / "smoke" / "table4_cd.csv"
    rows = list(csv.DictReader(open(path, newline="")))
    i = next(i for i, r in enumerate(rows) if r["metric"] == "fid" and r["nfe"] == "2")
    rows[i]["value"] = repr(float(rows[i]["value"]) * (1 + 1e-12))
    # resealed: a committed file that is intact, but holds another value than this code computes
    header = [c for c in rows[0] if c != "digest"]
    path.write_bytes(sealed_csv(header, [[r[c] for c in header] for r in rows]))
    assert runner.main(["--verify", yaml, "--preset", "smoke"]) == 1
    out = capsys.readouterr().out
    assert f"table4_cd fid: 1 of {n_fid[1]} values differ" in out and "NOT verified" in out
    kept = Path(out.rsplit("reruns kept in ", 1)[1].strip())
    assert (kept / "results" / "smoke" / "table4_cd.csv").exists()
    shutil.rmtree(kept)
