"""``make gpu-check`` (scflow.repro.gpu_check): a clear failure without a GPU, a working code path."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_fails_fast_and_clearly_without_gpu():
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "scflow.repro.gpu_check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no CUDA GPU is visible" in proc.stderr and "FAILED" in proc.stderr
    assert time.perf_counter() - t0 < 60  # before any training (torch's import dominates)


def test_makefile_target_runs_the_check():
    make = (ROOT / "Makefile").read_text()
    assert "gpu-check:" in make and "-m scflow.repro.gpu_check" in make


@pytest.mark.slow
def test_same_checks_pass_on_cpu_at_tiny_size(tmp_path, monkeypatch):
    """The check's code path (teacher, fp32 + bf16 students, FID, timing) on the CPU."""
    from scflow.repro.gpu_check import run_checks

    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path))
    args = argparse.Namespace(teacher_steps=3, student_steps=3, n_eval=32, time_steps=1)
    timings = []
    rows = run_checks(args, device="cpu", timed=(("unet_tiny", 8, "no"),), timings=timings)
    assert [(t["net"], t["update"]) for t in timings] == [("unet_tiny", "CD"), ("unet_tiny", "full")]
    assert all(t["gflop"] > 0 and t["pct_peak"] > 0 for t in timings)
    assert [name.split(",")[0] for name, *_ in rows] == [
        "teacher unet_small", "SCFlow student", "SCFlow student", "update time unet_tiny"]
    assert all(ok for _, ok, _, _ in rows), rows
    assert "bf16" in rows[2][0] and "FID NFE 1" in rows[1][3]


def test_timing_rows_carry_flops_rate_and_percent_of_peak(one_thread):
    from scflow.repro.gpu_check import time_updates, timing_table

    r = time_updates("unet_tiny", 8, "no", steps=1, batch=4, full=False, device="cpu")
    assert r["finite"] == 1.0 and r["ms"] > 0
    assert r["gflop"] > 0 and r["peak_tflop_s"] > 0
    assert r["tflop_s"] == pytest.approx(r["gflop"] / r["ms"])  # GFLOP / ms = TFLOP / s
    assert r["pct_peak"] == pytest.approx(100 * r["tflop_s"] / r["peak_tflop_s"])
    full = time_updates("unet_tiny", 8, "no", steps=1, batch=4, full=True, device="cpu")
    assert full["gflop"] > 2 * r["gflop"]  # RF's student call, BI's target half, D, R1
    table = timing_table([{"net": "unet_tiny", "latents": "4x8x8", "precision": "no",
                           "update": "CD", **r}])
    assert "%peak" in table.splitlines()[0] and "unet_tiny" in table and "fp32" in table
