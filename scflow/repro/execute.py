"""Executing one planned run: papermill in this process or in a child process, its log, and the
executed notebook kept beside its results (published by :mod:`scflow.repro.publish`).
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

from scflow.cache import REPO_ROOT, entry_lock
from scflow.progress import HEADLESS_ENV
from scflow.repro.params import EXPLICIT_ENV
from scflow.repro.plan import PlannedRun
from scflow.repro.publish import publish_notebook, published_path
from scflow.repro.results import RUNNER_ENV


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


def _ipc_kernel_manager() -> type:
    """A kernel manager whose kernel talks over local sockets (IPC), not TCP ports.

    Nothing outside this machine needs to reach a headless kernel; over TCP without keys the
    kernel warns that its traffic is unencrypted, in every run's output. The sockets get an
    absolute name of their own in the temporary folder (jupyter_client's default is relative
    to the working directory, which the runner and its kernels do not share, and is the same
    for two kernels started at once); the kernel removes them when it shuts down.
    """
    import tempfile
    import uuid

    from jupyter_client import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "ipc"

        @default("ip")
        def _ip_default(self) -> str:
            return str(Path(tempfile.gettempdir()) / f"scflow-kernel-{uuid.uuid4().hex[:16]}")

    return IPCKernelManager


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
                    stdout_file=log, stderr_file=log, kernel_manager_class=_ipc_kernel_manager())
        except BaseException:
            log.write("\n" + traceback.format_exc())
            raise
    # kept beside its CSV; a run without one (the report: REPORT.md and its PNGs are its output)
    # keeps its executed notebook under runs/ only
    if job.get("published") and Path(job["csv"]).exists():
        publish_notebook(output, Path(job["published"]))


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
