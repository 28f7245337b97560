"""Executing a batch of planned runs: resume (skip a run whose CSV has its configuration hash),
dedupe (an identical configuration runs once, the others get a copy), ``--jobs`` parallelism and
barriers; failures are collected, not raised.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from scflow.repro.cost import describe
from scflow.repro.execute import execute, execute_in_subprocess
from scflow.repro.notebooks import notebooks_dir
from scflow.repro.plan import PlannedRun, RunConfigError, plan_spec, runs_root
from scflow.repro.presets import PRESET_NAMES, preset_values
from scflow.repro.results_read import copy_results, results_state


def _alias(run: PlannedRun, source: PlannedRun) -> None:
    """Give ``run`` a copy of ``source``'s CSV (run column renamed, resealed) and a one-line log."""
    copy_results(source.csv, run.csv, run.name)
    run.log.parent.mkdir(parents=True, exist_ok=True)
    run.log.write_text(f"alias of {source.name} (identical configuration "
                       f"{run.params.config_hash}); results copied from {source.csv}\n")


def _estimate(run: PlannedRun) -> str:
    """``; estimate ~12 min, 30 MiB (...)`` for a computing run (:mod:`scflow.repro.cost`)."""
    if "device" not in run.params:
        return ""
    p = {**preset_values(run.params.preset), **run.params}
    return f"; estimate {describe(run.notebook.stem, p)}"


def _has_hash(run: PlannedRun) -> bool:
    """True if ``run.csv`` is a verified results CSV of this run's configuration."""
    return results_state(run.csv).config_hash == run.params.config_hash


def replacements(runs: Sequence[PlannedRun], force: bool) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` about the CSVs the runs would write over.

    A CSV of another notebook or configuration, or one that cannot be trusted (modified,
    unreadable), is replaced only with ``force``: without it each is a problem naming the file;
    with it, a note saying which file will be replaced.
    """
    problems, notes = [], []
    for run in runs:
        state = results_state(run.csv)
        if not state.exists or (state.config_hash == run.params.config_hash and not state.problem):
            continue
        if state.problem:
            what = state.problem
        else:
            what = (f"{run.csv} holds the results of notebook {state.notebook}, configuration "
                    f"{state.config_hash} (this run: {run.notebook.stem}, "
                    f"{run.params.config_hash})")
        if force:
            notes.append(f"{run.name}: replaces {run.csv} ({what})")
        else:
            problems.append(f"{run.file}: {what}: not replaced without --force (or give the "
                            f"run another run_name)")
    return problems, notes


def _now(fn: Callable[[PlannedRun], None], run: PlannedRun) -> Future:
    """Run ``fn(run)`` in this thread and return it as a finished future (``jobs == 1``)."""
    fut: Future = Future()
    try:
        fn(run)
        fut.set_result(None)
    except Exception as err:  # noqa: BLE001 - reported by the scheduler
        fut.set_exception(err)
    return fut


def run_batch(runs: Sequence[PlannedRun], force: bool = False, out: Any = None,
              jobs: int = 1) -> list[tuple[PlannedRun, str]]:
    """Execute, skip or alias every planned run; return the failures as (run, reason).

    ``jobs > 1`` executes that many notebooks at once, each in its own process with
    ``cpu_count // jobs`` threads. Runs start in file order; a run identical to one still in
    flight waits for it (then it is an alias), and a ``barrier`` run waits for every earlier one.
    """
    out = out or sys.stdout
    t0, n, wall0 = time.perf_counter(), len(runs), time.time()
    number = {id(r): i for i, r in enumerate(runs, 1)}
    done: dict[str, PlannedRun] = {}  # config hash -> run whose CSV holds the results
    failed: dict[str, PlannedRun] = {}
    if not force:
        for run in runs:
            if _has_hash(run):
                done.setdefault(run.params.config_hash, run)
    failures: list[tuple[PlannedRun, str]] = []
    threads = max(1, (os.cpu_count() or 1) // jobs)

    def head(run: PlannedRun) -> str:
        return f"[{number[id(run)]}/{n}] {run.name} ({run.notebook.stem}, {run.params.config_hash})"

    def settle(run: PlannedRun) -> None:
        """A run whose configuration already ran (or failed) in this batch or before."""
        h = run.params.config_hash
        if h in failed:
            failures.append((run, f"identical to failed run {failed[h].name}"))
            print(f"{head(run)}: not run, identical to failed {failed[h].name}", file=out)
        elif done[h] is run or (_has_hash(run) and not force):
            print(f"{head(run)}: skipped, {run.csv} has this configuration", file=out)
        elif not done[h].csv.exists():
            print(f"{head(run)}: same configuration as {done[h].name}, which wrote no CSV",
                  file=out)
        else:
            _alias(run, done[h])
            print(f"{head(run)}: same configuration as {done[h].name}, results copied", file=out)

    def finish(run: PlannedRun, err: BaseException | None, started: float) -> None:
        h = run.params.config_hash
        if err is not None:
            failed[h] = run
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)
            failures.append((run, reason))
            print(f"{head(run)}: FAILED after {time.perf_counter() - started:.0f}s: {reason}",
                  file=out, flush=True)
            return
        state = results_state(run.csv)
        written = state.config_hash
        if run.writes is not None:  # a run without a CSV (the report): its file is fresh
            if not run.writes.exists() or run.writes.stat().st_mtime < wall0:
                print(f"{head(run)}: warning: the notebook wrote no {run.writes}", file=out)
        elif state.problem:
            failed[h] = run
            failures.append((run, state.problem))
            print(f"{head(run)}: FAILED: {state.problem}", file=out, flush=True)
            return
        elif written is None:
            print(f"{head(run)}: warning: the notebook wrote no {run.csv}", file=out)
        elif written != h:
            failed[h] = run
            failures.append((run, f"notebook wrote config hash {written}, expected {h}: does it "
                                  f"call resolve_notebook_params({run.notebook.stem!r}, ...)?"))
            print(f"{head(run)}: FAILED: config hash mismatch", file=out, flush=True)
            return
        done[h] = run
        print(f"{head(run)}: ok in {time.perf_counter() - started:.0f}s "
              f"(batch {time.perf_counter() - t0:.0f}s)", file=out, flush=True)

    pending = list(runs)
    running: dict[Future, tuple[PlannedRun, float]] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            for run in list(pending):
                h = run.params.config_hash
                if run.barrier and (running or pending[0] is not run):
                    break  # nothing after a barrier starts before it
                if any(r.params.config_hash == h for r, _ in running.values()):
                    continue  # its twin is in flight: alias it once that one has finished
                if h in failed or h in done:
                    pending.remove(run)
                    settle(run)
                    continue
                if len(running) >= jobs:
                    break
                pending.remove(run)
                for note in run.notes:
                    print(f"{head(run)}: note: {note}", file=out, flush=True)
                print(f"{head(run)}: running ... (log {run.log}{_estimate(run)})", file=out,
                      flush=True)
                started = time.perf_counter()
                fut = (_now(execute, run) if jobs == 1 else
                       pool.submit(execute_in_subprocess, run, threads))
                running[fut] = (run, started)
            if running:
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    run, started = running.pop(fut)
                    finish(run, fut.exception(), started)
    return failures


def run_notebook(notebook: str, parameters: dict[str, Any] | None = None, preset: str = "smoke",
                 run_name: str | None = None, nb_dir: Path | None = None) -> Path:
    """Validate and execute one notebook now (always, no resume); return its results CSV.

    For tests and scripts: ``run_notebook("01_latent_flow_matching")`` is a smoke run.
    Raises :class:`RunConfigError` if invalid, ``RuntimeError`` if the run failed.
    """
    if preset not in PRESET_NAMES:
        raise RunConfigError(f"unknown preset {preset!r}; valid: {', '.join(PRESET_NAMES)}")
    nb_dir = notebooks_dir() if nb_dir is None else Path(nb_dir)
    spec = {"notebook": notebook, "run_name": run_name or Path(notebook).stem,
            "parameters": parameters or {}}
    run = plan_spec(spec, Path(f"<{notebook}>"), preset, nb_dir, runs_root())
    failures = run_batch([run], force=True)
    if failures:
        raise RuntimeError(f"{run.name} failed: {failures[0][1]} (log: {run.log})")
    return run.csv
