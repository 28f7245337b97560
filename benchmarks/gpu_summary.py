"""Markdown summary of one ``gpu_measure.sh`` run: update cost per variant, hours, GPU sharing.

Reads ``OUTDIR/cost.csv`` (bench_distill_step.py rows) and ``OUTDIR/jobs.csv`` (bench_jobs.py
rows) and prints markdown; missing files or rows are said, not guessed.

    python benchmarks/gpu_summary.py OUTDIR > OUTDIR/summary.md
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

PAPER_UPDATES = 187_500  # 200 epochs of 30k images at batch 32
TARGET_PCT = 30.0  # the issue's goal for the paper-scale full update


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _f(row: dict, key: str) -> float:
    try:
        return float(row.get(key) or "nan")
    except ValueError:
        return math.nan


def _c(v: float, spec: str) -> str:
    return "-" if math.isnan(v) else format(v, spec)


def cost_table(rows: list[dict]) -> list[str]:
    out = ["| net | batch | update | variant | precision | ms/update | GFLOP/update (batch 32) "
           "| TFLOP/s | % of measured peak | peak GiB | host syncs | x eager | max rel. loss "
           "diff | note |", "|" + "---|" * 14]
    skipped = [f"{r['arch']} {r['update']} {r['variant']}" for r in rows
               if (r.get("note") or "").startswith("skipped")]
    for r in rows:
        if (r.get("note") or "").startswith("skipped"):
            continue
        out.append(
            f"| {r['arch']} | {r['batch']} | {r['update']} | {r['variant']} | "
            f"{r.get('precision') or '-'} | {_c(_f(r, 'ms_per_update'), '.1f')} | "
            f"{_c(_f(r, 'gflop_at_batch_32'), '.4g')} | "
            f"{_c(_f(r, 'gflop_per_s') / 1e3, '.3g')} | {_c(_f(r, 'pct_of_peak'), '.1f')} | "
            f"{_c(_f(r, 'peak_mem_gib'), '.1f')} | {_c(_f(r, 'host_syncs'), '.0f')} | "
            f"{_c(_f(r, 'speedup_vs_eager'), '.2f')} | {_c(_f(r, 'max_rel_loss_diff'), '.1e')} | "
            f"{r.get('note') or ''} |")
    if skipped:
        out.append(f"\nNot measured (the stage's deadline): {', '.join(skipped)}.")
    out += order_drift(rows)
    return out


def order_drift(rows: list[dict]) -> list[str]:
    """The eager step measured first and again later (``eager_again``): the order's effect."""
    first = {(r["arch"], r["update"]): r for r in rows if r["variant"] == "eager"}
    out = []
    for r in rows:
        key = (r["arch"], r["update"])
        if r["variant"] != "eager_again" or key not in first:
            continue
        a, b = _f(first[key], "ms_per_update"), _f(r, "ms_per_update")
        if math.isnan(a) or math.isnan(b):
            continue
        out.append(f"- {key[0]} {key[1]} update, eager measured first and again later: "
                   f"{a:.1f} / {b:.1f} ms ({a / b:.2f}x): a speed-up within that of 1 is the "
                   "order of measurement, not the switch")
    return ["", *out] if out else []


def hours(rows: list[dict]) -> list[str]:
    """Hours of the paper's 187,500 full updates at batch 32: eager and the fastest variant."""
    full = [r for r in rows if r["net"] == "paper" and r["update"] == "full"
            and r["batch"] == "32" and not math.isnan(_f(r, "ms_per_update"))
            and r["variant"] != "eager_again"]  # a control, not a variant
    if not full:
        return ["No paper-scale full update at batch 32 was timed."]
    best = min(full, key=lambda r: _f(r, "ms_per_update"))
    out = []
    for label, r in (("eager", next((r for r in full if r["variant"] == "eager"), None)),
                     (f"fastest ({best['variant']})", best)):
        if r is None:
            continue
        ms, pct = _f(r, "ms_per_update"), _f(r, "pct_of_peak")
        out.append(f"- {label}: {ms:.1f} ms per full update, {pct:.1f}% of the measured "
                   f"{r['precision']} matmul peak ({_f(r, 'peak_gflop_per_s') / 1e3:.0f} "
                   f"TFLOP/s): {PAPER_UPDATES:,} updates = {PAPER_UPDATES * ms / 3.6e6:.1f} h")
    reached = _f(best, "pct_of_peak") >= TARGET_PCT
    out.append(f"- the goal of >= {TARGET_PCT:.0f}% of the peak is "
               f"{'reached' if reached else 'not reached'}: see profile.txt for what bounds it")
    return out


def jobs_table(rows: list[dict]) -> list[str]:
    if not rows:
        return ["No sharing measurement (jobs.csv missing)."]
    out = ["| processes | variant | updates/s together | per process (min-max) |",
           "|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['procs']} | {r['variant']} | {_f(r, 'updates_per_s_total'):.1f} | "
                   f"{_f(r, 'updates_per_s_min'):.1f}-{_f(r, 'updates_per_s_max'):.1f} |")
    return out


def main(folder: str) -> None:
    d = Path(folder)
    cost = _rows(d / "cost.csv")
    head = cost[0] if cost else {}
    print(f"# Update cost on {head.get('device_name', 'an unknown device')} "
          f"(torch {head.get('torch', '?')})\n")
    print("FLOPs counted with FlopCounterMode on the library's step; % of a dense matmul rate "
          "measured in the same process in the row's dtype; ms: median of timed blocks (GPU: wall "
          "time; CPU: process CPU time).\n")
    print("\n".join(cost_table(cost) if cost else ["No update-cost rows (cost.csv missing)."]))
    print("\n## The paper's 187,500 updates (unet_lfm_celeba, bf16, batch 32)\n")
    print("\n".join(hours(cost)))
    print("\n## The mini net with several processes sharing the GPU (full SCFlow updates)\n")
    print("\n".join(jobs_table(_rows(d / "jobs.csv"))))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    main(sys.argv[1])
