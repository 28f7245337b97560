"""The update-cost benchmark and its GPU summary run, at a tiny size on the CPU."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_distill_step  # noqa: E402
import gpu_summary  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cost_rows_for_each_variant_and_summary(tmp_path, capsys):
    out = tmp_path / "cost.csv"
    bench_distill_step.main(["--nets", "mini", "--batch", "2", "--variants",
                             "eager,no_sync,channels_last,eager_again", "--no-seq",
                             "--calls", "2",
                             "--blocks", "1", "--csv", str(out)])
    rows = list(csv.DictReader(out.open()))
    assert [(r["update"], r["variant"]) for r in rows] == [
        ("full", "eager"), ("cd", "eager"), ("full", "no_sync"), ("cd", "no_sync"),
        ("full", "channels_last"), ("cd", "channels_last"), ("full", "eager_again"),
        ("cd", "eager_again")]
    by = {(r["update"], r["variant"]): r for r in rows}
    for kind in ("full", "cd"):
        flops = {float(by[kind, v]["gflop_per_update"]) for v in ("eager", "no_sync",
                                                                     "channels_last")}
        assert len(flops) == 1 and not any(r["note"] for r in rows)  # same FLOPs, all ran
        assert float(by[kind, "eager"]["gflop_at_batch_32"]) == pytest.approx(16 * flops.pop(), rel=1e-5)
        assert float(by[kind, "no_sync"]["max_rel_loss_diff"]) == 0.0  # deferred reads only
        assert float(by[kind, "channels_last"]["max_rel_loss_diff"]) < 1e-4  # rounding
        assert float(by[kind, "eager_again"]["max_rel_loss_diff"]) == 0.0  # the same step again
    full = by["full", "eager"]
    assert float(full["gflop_per_s"]) == pytest.approx(
        float(full["gflop_per_update"]) / float(full["ms_per_update"]) * 1e3, rel=1e-4)
    assert float(full["pct_of_peak"]) == pytest.approx(
        100 * float(full["gflop_per_s"]) / float(full["peak_gflop_per_s"]), rel=1e-4)
    capsys.readouterr()
    gpu_summary.main(str(tmp_path))
    md = capsys.readouterr().out
    assert "| unet_small | 2 | full | no_sync | fp32 |" in md
    assert "unet_small full update, eager measured first and again later: " in md
    assert "No paper-scale full update at batch 32 was timed" in md
    assert "jobs.csv missing" in md


def test_unknown_variant_is_refused_before_any_work():
    with pytest.raises(SystemExit):
        bench_distill_step.parse_args(["--variants", "eager,turbo"])


def test_grid_summary_names_what_the_box_cut_short(tmp_path):
    import grid_summary

    committed = Path(__file__).resolve().parents[1] / "results" / "mini"
    (tmp_path / "results" / "mini").mkdir(parents=True)
    shutil.copy(committed / "table4_cd.csv", tmp_path / "results" / "mini")
    (tmp_path / "runs" / "mini").mkdir(parents=True)
    (tmp_path / "runs" / "mini" / "table4_gan.log").write_text(
        "# header\n\rdistill:   0%|          | 0/1000 [00:00<?, ?it/s]"
        "\rdistill:  45%|####      | 450/1000 [00:40<00:50, 11.2it/s, cd=0.01]")
    runner = "\n".join([
        "[1/3] table4_cd (02_naive_consistency_distillation, abc): running ... (log x)",
        "[2/3] table4_gan (03_truncation_and_gan, def): running ... (log y)",
        "[1/3] table4_cd (02_naive_consistency_distillation, abc): ok in 270s (batch 271s)"])
    md = grid_summary.summary(tmp_path, "mini", runner, box=480, jobs=15, exit_code=124,
                              elapsed=480, device_name="a GPU", committed=committed)
    assert md.startswith("# The `mini` grid on a GPU (`--jobs 15`, a box of 480 s)")
    assert "the box stopped the runner. Of the plan's 3 runs, 1 finished, 0 failed, 1 were " \
           "cut short" in md
    assert "| `table4_gan` | `distill 45% 450/1000 [00:40<00:50, 11.2it/s, cd=0.01]` |" in md
    assert "| `02_naive_consistency_distillation` | 1 |" in md  # the timings table
    # the same CSV on both sides: every FID equals the committed one
    fid_rows = [r for r in md.splitlines() if r.startswith("| `table4_cd` | cd |")]
    assert [r.split(" | ")[2] for r in fid_rows] == ["1", "16"]
    assert all(r.split(" | ")[3] == r.split(" | ")[4].rstrip(" |") for r in fid_rows)
    done = grid_summary.summary(tmp_path, "mini", runner.replace("running ... (log y)",
                                                                 "ok in 300s (batch 300s)"),
                                box=480, jobs=15, exit_code=0, elapsed=301, device_name="",
                                committed=committed)
    assert "The runner finished all 3 runs of the plan." in done and "Cut short" not in done
