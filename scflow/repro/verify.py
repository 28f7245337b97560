"""Do the committed results still come out of the committed code? Rerun them and compare.

``python -m scflow.repro.run --verify RUNS... [--preset mini] [--jobs 2] [--tolerance 0]``
(``make verify``) reruns the named runs from scratch, the way the runner produced them, in a
temporary cache, results and runs folder (``SCFLOW_CACHE``, ``SCFLOW_RESULTS``, ``SCFLOW_RUNS``):
every notebook with one torch thread, ``--jobs`` at once. When notebook 01 (which trains the
shared autoencoder, latents, teacher and classifier) is among the runs, ``SCFLOW_ARTIFACTS``
points at an empty folder, so those are trained rather than copied from ``artifacts/``; the
other runs then use what it trained. Then every value of each rerun CSV is compared with the
committed one: equal means bit-identical floats. The table lists, per run and metric, the
values compared, how many are equal and the largest relative difference; the exit code is 1 if
a difference exceeds ``tolerance`` (default 0: anything but bit-identical), a value is missing
on one side, or a run failed, and 2 if nothing could be compared (invalid run files, no
committed CSV, a committed CSV of another configuration). Wall-clock metrics are listed, not
compared. The temporary folder is deleted, or kept (and named) when something differed.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from scflow.provenance import source_fingerprint
from scflow.repro.batch import run_batch
from scflow.repro.plan import PlannedRun, RunConfigError, plan
from scflow.repro.results import read_config_hash

ARTIFACTS_NOTEBOOK = "01_latent_flow_matching"
"""The notebook that trains the shared artefacts (:mod:`scflow.repro.artifacts`)."""

WALL_CLOCK_METRICS = frozenset({"sec_per_image", "sec_per_update", "eval_seconds"})
"""Measured times: they differ on every run, so they are listed but not compared."""

RERUN_THREADS = 1
"""Torch and BLAS threads of every rerun notebook (the runner's one per notebook)."""

ROW_KEY = ("method", "nfe", "step", "metric", "seed", "draw", "n_samples", "feature_backend")
"""What identifies a value in a results CSV (the rest is bookkeeping: run, time, git sha...)."""


@dataclass
class MetricDiff:
    """The comparison of one metric of one run: committed vs rerun."""

    run: str
    metric: str
    n: int
    """Values compared (rows present in both files)."""
    n_equal: int
    """Of which bit-identical."""
    max_rel: float
    """Largest ``|a - b| / max(|a|, |b|)`` (inf for a value on one side only or not a number)."""
    only_one_side: int = 0
    """Rows of this metric present in one file only."""

    @property
    def compared(self) -> bool:
        return self.metric not in WALL_CLOCK_METRICS

    def exceeds(self, tolerance: float) -> bool:
        return self.compared and (self.only_one_side > 0 or self.max_rel > tolerance)


def rel_diff(a: float, b: float) -> float:
    """0 for bit-equal values (NaN equals NaN), else the relative difference (inf if not finite)."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b))


def _values(path: Path) -> dict[tuple[str, ...], float]:
    """``{(ROW_KEY values..., occurrence): value}`` of a results CSV (non-numbers: NaN)."""
    out: dict[tuple[str, ...], float] = {}
    seen: Counter[tuple[str, ...]] = Counter()
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            key = tuple(row.get(k) or "" for k in ROW_KEY)
            n, seen[key] = seen[key], seen[key] + 1
            try:
                value = float(row["value"])
            except (TypeError, ValueError):
                value = math.nan
            out[(*key, str(n))] = value
    return out


def compare_csv(run: str, committed: Path, rerun: Path) -> list[MetricDiff]:
    """Every value of ``rerun`` against ``committed``, one :class:`MetricDiff` per metric."""
    a, b = _values(committed), _values(rerun)
    metric_at = ROW_KEY.index("metric")
    diffs: dict[str, MetricDiff] = {}
    for key in list(a) + [k for k in b if k not in a]:
        m = key[metric_at]
        d = diffs.setdefault(m, MetricDiff(run, m, 0, 0, 0.0))
        if key not in a or key not in b:
            d.only_one_side += 1
            d.max_rel = math.inf
            continue
        r = rel_diff(a[key], b[key])
        d.n += 1
        d.n_equal += r == 0.0
        d.max_rel = max(d.max_rel, r)
    return list(diffs.values())


@contextlib.contextmanager
def scratch_env(root: Path, train_artifacts: bool) -> Iterator[None]:
    """Cache, results and runs under ``root``; one torch thread per notebook (kernels inherit
    these variables; torch reads the thread count at import)."""
    values = {"SCFLOW_CACHE": root / "cache", "SCFLOW_RESULTS": root / "results",
              "SCFLOW_RUNS": root / "runs", "OMP_NUM_THREADS": RERUN_THREADS,
              "MKL_NUM_THREADS": RERUN_THREADS}
    if train_artifacts:
        values["SCFLOW_ARTIFACTS"] = root / "no-shipped-artifacts"  # never created
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _committed(runs: Sequence[PlannedRun]) -> list[str]:
    """What makes a run impossible to verify (no committed CSV, another configuration's CSV)."""
    problems = []
    for run in runs:
        h = read_config_hash(run.csv)
        if h is None:
            problems.append(f"{run.name}: no committed {run.csv} to compare with")
        elif h != run.params.config_hash:
            problems.append(f"{run.name}: {run.csv} holds configuration {h}, {run.file} now "
                            f"resolves to {run.params.config_hash}; regenerate it first")
    return problems


def _protocol_note(path: Path) -> str | None:
    """What the committed CSV says was done otherwise than this rerun (thread count, code)."""
    with open(path, newline="") as fh:
        first = next(csv.DictReader(fh), None) or {}
    threads, code = first.get("torch_threads") or "", first.get("code_version") or ""
    parts = ([f"torch threads {threads} (rerun: {RERUN_THREADS})"]
             if threads not in ("", str(RERUN_THREADS)) else []) + \
        ([f"code {code} (rerun: {source_fingerprint()})"] if code not in ("", source_fingerprint())
         else [])
    return f"committed with {', '.join(parts)}" if parts else None


def print_table(diffs: Sequence[MetricDiff], tolerance: float, out: TextIO) -> None:
    """One line per (run, metric): values, equal, largest relative difference, verdict."""
    print(f"{'run':28s} {'metric':20s} {'n values':>8s} {'n equal':>8s} {'max rel diff':>12s}",
          file=out)
    for d in diffs:
        verdict = ("not compared (wall clock)" if not d.compared else
                   f"DIFFERS{f' ({d.only_one_side} rows on one side only)' if d.only_one_side else ''}"
                   if d.exceeds(tolerance) else "ok")
        print(f"{d.run:28s} {d.metric:20s} {d.n:8d} {d.n_equal:8d} {d.max_rel:12.3g}  {verdict}",
              file=out)


def verify(paths: Sequence[str | Path], preset: str = "mini", jobs: int = 1,
           tolerance: float = 0.0, nb_dir: Path | None = None, out: TextIO | None = None,
           record: bool = False) -> int:
    """Rerun the runs of ``paths`` from scratch and compare them with their committed CSVs.

    Returns the exit code (0 every value within ``tolerance``, 1 a difference or a failed run,
    2 nothing compared).
    """
    out = out or sys.stdout
    if not tolerance >= 0:
        print(f"--tolerance must be >= 0, got {tolerance}", file=sys.stderr)
        return 2
    try:
        runs = plan(paths, preset, nb_dir)
    except RunConfigError as err:
        print(f"invalid run files or missing inputs, nothing was run:\n{err}", file=sys.stderr)
        return 2
    problems = _committed(runs) if runs else [f"no run files (*.yaml) in {' '.join(map(str, paths))}"]
    if problems:
        print("nothing verified:\n" + "\n".join(f"- {p}" for p in problems), file=sys.stderr)
        return 2
    committed = {r.name: r.csv for r in runs}
    trains = any(r.notebook.stem == ARTIFACTS_NOTEBOOK for r in runs)
    root = Path(tempfile.mkdtemp(prefix="scflow-verify-"))
    t0 = time.perf_counter()
    print(f"verifying {len(runs)} runs from scratch in {root} (one torch thread per notebook, "
          f"jobs {jobs}, shared artefacts {'trained' if trains else 'shipped where available'})", file=out,
          flush=True)
    with scratch_env(root, trains):
        reruns = plan(paths, preset, nb_dir)  # the same runs, writing under root
        failures = run_batch(reruns, force=True, jobs=jobs, out=out)
    failed = {r.name: reason for r, reason in failures}
    diffs: list[MetricDiff] = []
    notes: list[str] = []
    for run in reruns:
        if run.name in failed or not run.csv.exists():
            notes.append(f"{run.name}: rerun FAILED ({failed.get(run.name, 'no CSV')}); log "
                         f"{run.log}")
            continue
        diffs += compare_csv(run.name, committed[run.name], run.csv)
        note = _protocol_note(committed[run.name])
        if note:
            notes.append(f"{run.name}: {note}")
    print(file=out)
    print_table(diffs, tolerance, out)
    bad = [d for d in diffs if d.exceeds(tolerance)]
    for d in bad:
        notes.append(f"{d.run} {d.metric}: {d.n - d.n_equal} of {d.n} values differ, max "
                     f"relative difference {d.max_rel:.3g} > tolerance {tolerance:g}"
                     + (f", {d.only_one_side} rows on one side only" if d.only_one_side else ""))
    for note in notes:
        print(note, file=out)
    ok = not bad and not failed and all(r.csv.exists() for r in reruns)
    took = time.perf_counter() - t0
    if record:  # the README's "When regeneration is exact" is rendered from it
        from scflow.repro.results import results_dir
        from scflow.repro.verify_record import RECORD_NAME, write_record

        path = write_record(results_dir(preset) / RECORD_NAME, preset, [r.name for r in runs],
                            diffs, [n.replace(str(root), "<scratch>") for n in notes], took,
                            jobs, RERUN_THREADS, tolerance, ok)
        print(f"recorded in {path}", file=out)
    if ok:
        shutil.rmtree(root, ignore_errors=True)
        print(f"verified: every compared value of {len(runs)} runs within tolerance "
              f"{tolerance:g} ({'bit-identical' if tolerance == 0 else 'relative'}) in "
              f"{took:.0f} s", file=out)
        return 0
    print(f"NOT verified ({took:.0f} s); reruns kept in {root}", file=out)
    return 1

