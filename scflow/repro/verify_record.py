"""The record of a verification (``--verify --record``) and its rendering in the README.

``python -m scflow.repro.run --verify RUNS... --record`` writes what it compared and found to
``results/<preset>/verify.json`` (the machine, library versions, thread count, seconds, every
(run, metric) with its values compared, how many are bit-identical and the largest relative
difference); the README's "When regeneration is exact" section is rendered from that file
(:func:`verify_markdown`), so the numbers a reader sees there are the verification's own.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RECORD_NAME = "verify.json"
"""File name of the record, under ``results/<preset>/``."""


def write_record(path: Path, preset: str, runs: Sequence[str], diffs: Sequence[Any],
                 notes: Sequence[str], seconds: float, jobs: int, threads: int,
                 tolerance: float, ok: bool) -> Path:
    """Write the record of one verification to ``path`` (atomically); ``diffs``:
    :class:`scflow.repro.verify.MetricDiff` of every compared (run, metric)."""
    import numpy
    import torch

    from scflow.cache import atomic_write_bytes
    from scflow.provenance import source_fingerprint

    record = {
        "preset": preset, "runs": list(runs), "ok": bool(ok), "tolerance": tolerance,
        "seconds": round(seconds, 1), "jobs": jobs, "torch_threads_per_notebook": threads,
        "code_version": source_fingerprint(), "platform": platform.platform(),
        "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__,
        "metrics": [{"run": d.run, "metric": d.metric, "n": d.n, "n_equal": d.n_equal,
                     "max_rel": d.max_rel, "compared": d.compared,
                     "only_one_side": d.only_one_side} for d in diffs],
        "notes": list(notes),
    }
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
    return path


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None if there is none."""
    if not path.exists():
        return None
    return json.loads(path.read_text())


def verify_markdown(record: dict[str, Any] | None) -> str:
    """The README's summary of a recorded verification: what was rerun, where, how long, and per
    run how many values came out bit-identical and the largest relative difference."""
    if record is None:
        return "(no verification recorded: `python -m scflow.repro.run --verify RUNS... --record`)"
    per_run: dict[str, list[dict[str, Any]]] = {}
    for m in record["metrics"]:
        if m["compared"]:
            per_run.setdefault(m["run"], []).append(m)
    verdict = ("every compared value within the tolerance"
               + (" (bit-identical)" if record["tolerance"] == 0 else
                  f" (relative {record['tolerance']:g})")
               if record["ok"] else "**differences beyond the tolerance** (below)")
    threads = record["torch_threads_per_notebook"]
    lines = [f"`make verify` reran {len(record['runs'])} committed runs from scratch "
             f"({', '.join(f'`{r}`' for r in record['runs'])}) in {record['seconds'] / 60:.0f} "
             f"minutes with {record['jobs']} at a time, "
             f"{'one torch thread' if threads == 1 else f'{threads} torch threads'} each, on "
             f"{record['platform']} ({record['cpu_count']} CPUs; Python {record['python']}, "
             f"torch {record['torch']}, NumPy {record['numpy']}): {verdict}.", "",
             "| run | values compared | bit-identical | largest relative difference |",
             "|---|---|---|---|"]
    for run, ms in per_run.items():
        n = sum(m["n"] for m in ms)
        equal = sum(m["n_equal"] for m in ms)
        worst = max(m["max_rel"] for m in ms)
        lines.append(f"| `{run}` | {n} | {equal} | {worst:.3g} |")
    if record["notes"]:
        lines += ["", *(f"- {note}" for note in record["notes"])]
    return "\n".join(lines)
