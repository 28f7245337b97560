"""Executing one planned run: papermill in this process or in a child process, its log, and the
executed notebook kept beside its results.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from scflow.cache import REPO_ROOT, atomic_write_bytes, entry_lock
from scflow.progress import HEADLESS_ENV
from scflow.repro.params import EXPLICIT_ENV
from scflow.repro.plan import PlannedRun
from scflow.repro.results import RUNNER_ENV, results_path


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
    execute_job(_job(run))


def _job(run: PlannedRun) -> dict[str, Any]:
    """What a process needs to execute ``run`` (plain JSON: it crosses process boundaries)."""
    return {"notebook": str(run.notebook), "output": str(run.output), "log": str(run.log),
            "parameters": run.injected(), "explicit": sorted(run.overrides),
            "published": str(published_path(run.params.preset, run.name)), "csv": str(run.csv),
            "header": f"# {run.file} -> {run.notebook.name}, preset {run.params.preset}, "
                      f"config {run.params.config_hash}"}


def execute_job(job: dict[str, Any]) -> None:
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
