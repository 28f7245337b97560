"""Headless batch runner: ``python -m scflow.repro.run papermill_runs/ [--preset P] [--dry-run]``.

Every YAML file describes one run (see ``papermill_runs/README.md``)::

    # Table 6, row "t_trunc 0.2"
    notebook: 05_bidirectional_loss
    run_name: table6_trunc0.2        # optional, defaults to the file stem
    parameters: {t_trunc: 0.2}

All files are validated BEFORE anything runs: the notebook exists, every key is a parameter of
that notebook (close matches are suggested), every value has the declared type and range, the
preset is known. Then each run is executed by papermill (kernel ``python3``, cwd = repository
root) into ``runs/<preset>/<run_name>.ipynb`` with its log beside it; the notebook itself writes
``results/<preset>/<run_name>.csv``.

Resume and dedupe use the config hash of (notebook, resolved parameters but run_name):
identical configurations in one batch run once and the others receive a copy of its CSV (an
alias, noted in their log); a run whose CSV already carries the same hash is skipped unless
``--force``. A failed run does not stop the batch; failures are listed at the end and the exit
code is 1 (2 for invalid or no run files, or a GPU, data or weights missing on this machine).
``--jobs N`` runs N notebooks at once, each in its own process (see :func:`run_batch`); a run
file with ``barrier: true`` starts after all earlier ones.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scflow.cache import REPO_ROOT, atomic_write_bytes, entry_lock
from scflow.progress import HEADLESS_ENV
from scflow.repro.notebooks import NotebookError, notebook_path, notebooks_dir, parameters_cell
from scflow.repro.params import (
    EXPLICIT_ENV,
    ParameterError,
    RunParams,
    check_run_name,
    resolve_notebook_params,
    unknown_name_message,
)
from scflow.repro.presets import PARAMS, PRESET_NAMES, preset_values
from scflow.repro.results import RUNNER_ENV, read_config_hash, results_path

SPEC_KEYS = ("notebook", "run_name", "parameters", "barrier")


class RunConfigError(ValueError):
    """One or more invalid run files (nothing has been executed)."""


@dataclass
class PlannedRun:
    """One validated YAML file, ready to execute."""

    file: Path
    notebook: Path
    params: RunParams
    overrides: dict[str, Any]
    comment: str
    csv: Path
    output: Path
    log: Path
    notes: list[str] = field(default_factory=list)
    barrier: bool = False  # starts only after every earlier run of the batch has finished

    @property
    def name(self) -> str:
        return self.params.run_name

    def injected(self) -> dict[str, Any]:
        """What papermill injects: preset, run_name and the file's overrides."""
        return {"preset": self.params.preset, "run_name": self.name, **self.overrides}


def runs_root() -> Path:
    """``$SCFLOW_RUNS`` if set, else ``<repo>/runs`` (git-ignored executed notebooks + logs)."""
    return Path(os.environ.get("SCFLOW_RUNS", REPO_ROOT / "runs"))


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """YAML files named directly or found (recursively, sorted) under folders."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml"))
        elif p.is_file():
            files.append(p)
        else:
            raise RunConfigError(f"{p}: no such file or folder")
    return files


def _first_comment(text: str) -> str:
    for line in text.splitlines():
        if line.strip().startswith("#"):
            return line.strip().lstrip("#").strip()
    return ""


def _value_hint(key: str, value: Any) -> str:
    """Explain YAML's habit of reading ``1e-4`` as a string."""
    if PARAMS[key].type is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            float(value)
            return f" (YAML reads {value!r} as text: write it with a dot, e.g. 1.0e-4)"
    return ""


def plan_one(file: Path, preset: str, nb_dir: Path, runs_dir: Path) -> PlannedRun:
    """Validate one YAML file against its notebook; raise :class:`RunConfigError` if invalid."""
    text = file.read_text()
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RunConfigError(f"{file}: invalid YAML: {err}") from err
    return plan_spec(spec, file, preset, nb_dir, runs_dir, _first_comment(text))


def plan_spec(spec: Any, file: Path, preset: str, nb_dir: Path, runs_dir: Path,
              comment: str = "") -> PlannedRun:
    """Validate one run description (the YAML's mapping); ``file`` names it in errors."""
    if not isinstance(spec, dict) or "notebook" not in spec:
        raise RunConfigError(f"{file}: expected a mapping with at least `notebook:`")
    if not isinstance(spec["notebook"], str) or not spec["notebook"].strip():
        raise RunConfigError(f"{file}: `notebook:` must name a notebook (e.g. "
                             f"05_bidirectional_loss), not {spec['notebook']!r}")
    errors = [f"{file}: unknown key {k!r}; allowed: {', '.join(SPEC_KEYS)}"
              for k in spec if k not in SPEC_KEYS]
    run_name = str(spec.get("run_name") or file.stem)
    bad_name = check_run_name(run_name)
    if bad_name:
        errors.append(f"{file}: {bad_name}")
    overrides = spec.get("parameters") or {}
    if not isinstance(overrides, dict):
        raise RunConfigError(f"{file}: `parameters:` must be a mapping")
    try:
        nb = notebook_path(spec["notebook"], nb_dir)
        defaults = parameters_cell(nb)
    except NotebookError as err:
        raise RunConfigError(f"{file}: {err}") from err
    for key in ("preset", "run_name"):
        if key in overrides:
            errors.append(f"{file}: set {key!r} with "
                          f"{'--preset' if key == 'preset' else 'the top-level run_name:'}, "
                          f"not under parameters")
        if key not in defaults:
            errors.append(f"{file}: notebook {nb.stem} has no {key!r} parameter, so the runner "
                          f"cannot run it")
    for key in overrides:
        if key not in defaults:
            errors.append(f"{file}: " + unknown_name_message(key, defaults, f"notebook {nb.stem}"))
        elif key in PARAMS and key not in ("preset", "run_name"):
            try:
                PARAMS[key].check(key, overrides[key])
            except ParameterError as err:
                errors.append(f"{file}: {err}{_value_hint(key, overrides[key])}")
    if errors:
        raise RunConfigError("\n".join(errors))
    values = {**defaults, **overrides, "preset": preset, "run_name": run_name}
    try:
        params = resolve_notebook_params(nb.stem, values, explicit=overrides)
    except ParameterError as err:
        raise RunConfigError("\n".join(f"{file}: {e}" for e in str(err).splitlines())) from err
    output = runs_dir / preset / f"{run_name}.ipynb"
    if nb_dir.resolve() in output.resolve().parents:
        raise RunConfigError(f"{file}: executed notebooks must not be written into {nb_dir}")
    barrier = spec.get("barrier", False)
    if not isinstance(barrier, bool):
        raise RunConfigError(f"{file}: `barrier:` must be true or false, not {barrier!r}")
    run = PlannedRun(file, nb, params, overrides, comment,
                     results_path(preset, run_name), output, output.with_suffix(".log"),
                     barrier=barrier)
    return run


def plan(paths: Sequence[str | Path], preset: str = "mini", nb_dir: Path | None = None,
         runs_dir: Path | None = None) -> list[PlannedRun]:
    """Validate every run file; raise one :class:`RunConfigError` listing every problem."""
    if preset not in PRESET_NAMES:
        raise RunConfigError(f"unknown preset {preset!r}; valid: {', '.join(PRESET_NAMES)}")
    nb_dir = notebooks_dir() if nb_dir is None else Path(nb_dir)
    runs_dir = runs_root() if runs_dir is None else Path(runs_dir)
    runs, errors = [], []
    for file in collect_files(paths):
        try:
            runs.append(plan_one(file, preset, nb_dir, runs_dir))
        except RunConfigError as err:
            errors.append(str(err))
    seen: dict[str, Path] = {}
    for run in runs:
        if run.name in seen:
            errors.append(f"{run.file}: run_name {run.name!r} already used by {seen[run.name]}")
        seen[run.name] = run.file
    if errors:
        raise RunConfigError("\n".join(errors))
    missing = _missing(runs, preset)
    if missing:
        raise RunConfigError(missing)
    return runs


def _missing(runs: Sequence[PlannedRun], preset: str) -> str:
    """Everything the runs need from outside and lack (GPU, data, weights), each listed once
    with the runs that need it; ``""`` when nothing is missing."""
    from scflow.repro.experiment import preflight

    needed_by: dict[str, list[str]] = {}
    for run in runs:
        if "device" in run.params:  # a notebook without a device computes nothing
            problems, _ = preflight({**preset_values(preset), **run.params})
            for problem in problems:
                needed_by.setdefault(problem, []).append(run.name)
    lines = []
    for problem, names in needed_by.items():
        who = "every run" if len(names) == len(runs) or len(names) > 3 else ", ".join(names)
        lines.append(f"- {problem}\n  (needed by {who})")
    if not lines:
        return ""
    return (f"preset {preset!r}: {len(lines)} things missing on this machine:\n"
            + "\n".join(lines))


@contextlib.contextmanager
def _kernel_env(nb_dir: Path, explicit: Sequence[str] = ()) -> Iterator[None]:
    """Environment of the kernels: the venv's ``python3`` kernelspec first, sparse bars, inline figures,
    and the run file's keys as explicitly set (so the notebook resolves them as the plan did)."""
    saved = dict(os.environ)
    share = str(Path(sys.prefix) / "share" / "jupyter")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (share, saved.get("JUPYTER_PATH", "")) if p)
    os.environ["SCFLOW_NOTEBOOKS"] = str(nb_dir)  # so notebook_params() finds the notebook
    os.environ[EXPLICIT_ENV] = ",".join(explicit)
    os.environ[RUNNER_ENV] = "1"  # its results are the committed ones, not interactive/
    os.environ.setdefault("TQDM_DISABLE", "1")  # third-party bars
    os.environ.setdefault(HEADLESS_ENV, "1")  # the project's bars: sparse (scflow.progress)
    # matplotlib: the kernel's inline backend (PNG, no display needed), so the executed notebook
    # kept in results/<preset>/notebooks/ shows its figures
    os.environ.pop("MPLBACKEND", None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def execute(run: PlannedRun) -> None:
    """Execute one notebook with papermill in this process; its cell output goes to ``run.log``."""
    _execute(_job(run))


def _job(run: PlannedRun) -> dict[str, Any]:
    """What a process needs to execute ``run`` (plain JSON: it crosses process boundaries)."""
    return {"notebook": str(run.notebook), "output": str(run.output), "log": str(run.log),
            "parameters": run.injected(), "explicit": sorted(run.overrides),
            "published": str(published_path(run.params.preset, run.name)), "csv": str(run.csv),
            "header": f"# {run.file} -> {run.notebook.name}, preset {run.params.preset}, "
                      f"config {run.params.config_hash}"}


def _execute(job: dict[str, Any]) -> None:
    import papermill

    notebook, output, log_path = Path(job["notebook"]), Path(job["output"]), Path(job["log"])
    output.parent.mkdir(parents=True, exist_ok=True)
    # Two batches executing the same run at once take turns: one log (and executed notebook)
    # per execution, never two interleaved in one file.
    with entry_lock(log_path), open(log_path, "w") as log:
        log.write(job["header"] + "\n")
        log.flush()
        try:
            with _kernel_env(notebook.parent, job.get("explicit", [])):
                papermill.execute_notebook(
                    str(notebook), str(output), parameters=job["parameters"],
                    kernel_name="python3", progress_bar=False, cwd=str(REPO_ROOT),
                    stdout_file=log, stderr_file=log)
        except BaseException:
            log.write("\n" + traceback.format_exc())
            raise
    # kept beside its CSV; a run without one (the report: REPORT.md and its PNGs are its output)
    # keeps its executed notebook under runs/ only
    if job.get("published") and Path(job["csv"]).exists():
        publish_notebook(output, Path(job["published"]))


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def published_path(preset: str, run_name: str) -> Path:
    """``results/<preset>/notebooks/<run_name>.ipynb``: the executed notebook kept with the CSV."""
    return results_path(preset, run_name).parent / "notebooks" / f"{run_name}.ipynb"


def publish_notebook(executed: Path, dest: Path) -> None:
    """Copy an executed notebook beside the results, outputs kept, run-specific metadata dropped.

    The copy is what a reader opens on the repository's web page (``notebooks/`` stays stripped);
    papermill's per-cell timings and the execution counts change on every run, so they are
    removed to keep regenerated copies diffable.
    """
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # live widget state: nothing to show in a static copy
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.execution_count = None
            for out in cell.get("outputs", []):
                if "execution_count" in out:
                    out["execution_count"] = None
                if WIDGET_VIEW in out.get("data", {}):  # keep the bar's text form only
                    del out["data"][WIDGET_VIEW]
    atomic_write_bytes(dest, nbformat.writes(nb).encode())


def execute_in_subprocess(run: PlannedRun, threads: int) -> None:
    """Execute ``run`` in a child process limited to ``threads`` CPU threads (parallel batches).

    Raises ``RuntimeError`` with the child's last error line when the notebook failed.
    """
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, str(threads))  # torch in the kernel reads these at import
    cmd = [sys.executable, "-m", "scflow.repro.run", "--execute-job", json.dumps(_job(run))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(REPO_ROOT))
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit code {proc.returncode}")


def _alias(run: PlannedRun, source: PlannedRun) -> None:
    """Give ``run`` a copy of ``source``'s CSV (run column renamed) and a one-line log."""
    with open(source.csv, newline="") as fh:
        reader = csv.DictReader(fh)
        rows, fields = list(reader), reader.fieldnames or []
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**r, "run": run.name} for r in rows)
    atomic_write_bytes(run.csv, buf.getvalue().encode())
    run.log.parent.mkdir(parents=True, exist_ok=True)
    run.log.write_text(f"alias of {source.name} (identical configuration "
                       f"{run.params.config_hash}); results copied from {source.csv}\n")


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
    t0, n = time.perf_counter(), len(runs)
    number = {id(r): i for i, r in enumerate(runs, 1)}
    done: dict[str, PlannedRun] = {}  # config hash -> run whose CSV holds the results
    failed: dict[str, PlannedRun] = {}
    if not force:
        for run in runs:
            if read_config_hash(run.csv) == run.params.config_hash:
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
        elif done[h] is run or (read_config_hash(run.csv) == h and not force):
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
        written = read_config_hash(run.csv)
        if written is None:
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
                print(f"{head(run)}: running ... (log {run.log})", file=out, flush=True)
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


def _describe(runs: Sequence[PlannedRun], force: bool, detail: bool, out: Any) -> None:
    seen: dict[str, str] = {}
    for run in runs:
        h = run.params.config_hash
        if not force and read_config_hash(run.csv) == h:
            status = "done"
        elif h in seen:
            status = f"alias of {seen[h]}"
        else:
            status = "to run"
        seen.setdefault(h, run.name)
        print(f"{run.name:32s} {run.notebook.stem:28s} {status:16s} # {run.comment}", file=out)
        if detail:
            print(f"    file {run.file}\n    inject {run.injected()}\n    -> {run.output}, "
                  f"{run.csv}", file=out)
            for note in run.notes:
                print(f"    note: {note}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code (0 ok, 1 failed runs, 2 nothing run)."""
    ap = argparse.ArgumentParser(prog="python -m scflow.repro.run", description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", default=[str(REPO_ROOT / "papermill_runs")],
                    help="YAML files or folders of them (default: papermill_runs/)")
    ap.add_argument("--preset", default="mini", help=f"one of {', '.join(PRESET_NAMES)}")
    ap.add_argument("--dry-run", action="store_true", help="validate and show the plan only")
    ap.add_argument("--list", action="store_true", help="list the runs and their status")
    ap.add_argument("--force", action="store_true", help="rerun even if results exist")
    ap.add_argument("--jobs", type=int, default=1,
                    help="notebooks executed at once, each in its own process with "
                         "cpu_count/jobs threads (default 1)")
    ap.add_argument("--execute-job", default=None, help=argparse.SUPPRESS)  # child of --jobs
    ap.add_argument("--notebooks-dir", type=Path, default=None,
                    help="where notebooks are looked up (default: $SCFLOW_NOTEBOOKS or notebooks/)")
    args = ap.parse_args(argv)
    if args.execute_job is not None:  # one notebook, in a child process of a parallel batch
        _execute(json.loads(args.execute_job))
        return 0
    if args.jobs < 1:
        print(f"--jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    try:
        runs = plan(args.paths, args.preset, args.notebooks_dir)
    except RunConfigError as err:
        print(f"invalid run files or missing inputs, nothing was run:\n{err}", file=sys.stderr)
        return 2
    if not runs:
        print(f"no run files (*.yaml) in {' '.join(args.paths)}", file=sys.stderr)
        return 2
    if args.list or args.dry_run:
        _describe(runs, args.force, detail=args.dry_run, out=sys.stdout)
        return 0
    failures = run_batch(runs, force=args.force, jobs=args.jobs)
    if failures:
        print(f"\n{len(failures)} of {len(runs)} runs failed:", file=sys.stderr)
        for run, reason in failures:
            print(f"  {run.name}: {reason}\n    log: {run.log}", file=sys.stderr)
        return 1
    print(f"all {len(runs)} runs ok", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
