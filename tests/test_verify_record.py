"""The record of a verification and the README summary rendered from it."""

from __future__ import annotations

from scflow.repro.verify import MetricDiff
from scflow.repro.verify_record import read_record, verify_markdown, write_record


def test_record_round_trip_and_summary(tmp_path):
    diffs = [MetricDiff("table4_cd", "fid", 25, 25, 0.0),
             MetricDiff("table4_cd", "precision", 25, 24, 3e-7),
             MetricDiff("table4_cd", "sec_per_image", 1, 0, 0.5),
             MetricDiff("01_teacher", "fid", 35, 35, 0.0)]
    path = write_record(tmp_path / "verify.json", "mini", ["01_teacher", "table4_cd"], diffs,
                        ["table4_cd: committed with code abc (rerun: def)"], 1234.5, 2, 1, 0.0,
                        ok=False)
    record = read_record(path)
    assert record["runs"] == ["01_teacher", "table4_cd"] and record["seconds"] == 1234.5
    text = verify_markdown(record)
    # per run: the compared values summed over metrics (wall time is not compared)
    assert "| `table4_cd` | 50 | 49 | 3e-07 |" in text
    assert "| `01_teacher` | 35 | 35 | 0 |" in text
    assert "differences beyond the tolerance" in text and "committed with code abc" in text
    assert "in 21 minutes with 2 at a time" in text
    record["ok"] = True
    assert "within the tolerance (bit-identical)" in verify_markdown(record)


def test_no_record_says_how_to_make_one(tmp_path):
    assert read_record(tmp_path / "verify.json") is None
    assert "--record" in verify_markdown(None)
