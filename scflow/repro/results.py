"""One tidy, long-format CSV per run, written atomically at the end of the run.

Each row is one number: ``(method, nfe, step, metric) -> value`` plus the bookkeeping that makes
it traceable (run, notebook, preset, seed, git sha, config hash, device, time). Rows accumulate
in memory and the file appears only once, complete (temp file + rename): a crashed run leaves
no CSV, so the runner reruns it. Files live in ``results/<preset>/<run>.csv``; figures in
``results/<preset>/figures/``; ``results/smoke/`` is git-ignored, so smoke numbers never reach
the paper tables.

Metric names are fixed: the image metrics are documented in :data:`scflow.metrics.METRIC_DOCS`,
the others in :data:`EXTRA_METRICS`; any other name is rejected.
"""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scflow.cache import REPO_ROOT, atomic_write_bytes
from scflow.repro.presets import PRESET_NAMES

COLUMNS = (
    "run", "notebook", "preset", "method", "nfe", "step", "metric", "value", "flag", "seed",
    "n_samples", "feature_backend", "git_sha", "config_hash", "device", "timestamp",
    "wall_time_s",
)
"""CSV columns. ``nfe``/``step``/``n_samples`` are empty where they do not apply; ``flag`` is
``non-finite`` when ``value`` is NaN or infinite (kept as is, never dropped);
``wall_time_s`` is the time from the start of the run to the moment the row was recorded."""

EXTRA_METRICS: dict[str, str] = {
    "loss": "training loss (total of Algorithm 1, or Eq. 1 for the teacher); `step` = iteration",
    "loss_cd": "L_CD, truncated consistency distillation term (Eq. 8); `step` = iteration",
    "loss_gan": "L_GAN, the student's adversarial term (Eq. 7); `step` = iteration",
    "loss_disc": "the discriminator's loss incl. R1 penalty; `step` = iteration",
    "loss_rf": "L_RF, reflow / self-correction term (Eq. 9); `step` = iteration",
    "loss_bi": "L_BI, bidirectional consistency term (Eq. 10); `step` = iteration",
    "recon_mse": "autoencoder reconstruction MSE on held-out images (pixel range [-1, 1])",
    "prompt_accuracy": "fraction of samples a classifier assigns to the prompted class",
    "clip_score": "mean CLIP image-text cosine similarity x 100 (text-to-image only)",
    "sec_per_image": "wall-clock seconds per generated image at this NFE (batched, no I/O)",
    "sec_per_update": "wall-clock seconds per distillation update (every loss term active)",
    "grid_minutes": "estimated wall minutes of the whole grid at `step` updates per student",
    "selected_lr": "learning rate chosen by the budget study's rule (scflow.repro.budget)",
    "selected_updates": "updates per student chosen by the budget study's rule",
}


def all_metrics() -> dict[str, str]:
    """Every allowed metric name -> its one-line definition."""
    from scflow.metrics import METRIC_DOCS

    return {**METRIC_DOCS, **EXTRA_METRICS}


def results_root() -> Path:
    """``$SCFLOW_RESULTS`` if set, else ``<repo>/results``."""
    return Path(os.environ.get("SCFLOW_RESULTS", REPO_ROOT / "results"))


def results_dir(preset: str) -> Path:
    """``results/<preset>/`` (not created)."""
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESET_NAMES)}")
    return results_root() / preset


def results_path(preset: str, run_name: str) -> Path:
    """``results/<preset>/<run_name>.csv``."""
    return results_dir(preset) / f"{run_name}.csv"


RUNNER_ENV = "SCFLOW_RUNNER"
"""Set by :mod:`scflow.repro.run` in the kernels it starts: their outputs are the committed results."""


def interactive() -> bool:
    """True in a Jupyter kernel the runner did not start (JupyterLab, plain papermill).

    Such runs write to ``results/<preset>/interactive/`` so that exploring a notebook never
    changes the CSVs and figures the committed report is built from; the runner, which checks
    configuration hashes and skips finished runs, is the one way to update those.
    """
    if os.environ.get(RUNNER_ENV):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def output_dir(preset: str) -> Path:
    """Where this process writes CSVs and figures: ``results/<preset>/`` or its ``interactive/``."""
    return results_dir(preset) / "interactive" if interactive() else results_dir(preset)


def git_sha() -> str:
    """Short HEAD sha, ``+dirty`` if tracked files (outside results/) changed; else ``unknown``.

    ``SCFLOW_GIT_SHA`` overrides it, for a copy of a checkout without its ``.git`` (e.g. the
    working tree sent to a GPU machine).
    """
    if os.environ.get("SCFLOW_GIT_SHA"):
        return os.environ["SCFLOW_GIT_SHA"]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    try:
        sha = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _cell(value: Any) -> Any:
    return "" if value is None else value


def write_results(rows: Sequence[Mapping[str, Any]], path: str | Path,
                  meta: Mapping[str, Any]) -> Path:
    """Validate ``rows`` (each merged over the run-level ``meta``) and write the CSV atomically.

    Raises ``ValueError`` on an unknown metric or column, a non-numeric value, or no rows.
    Non-finite values are kept and flagged ``non-finite``.
    """
    if not rows:
        raise ValueError("no result rows to write")
    known = all_metrics()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        full = {**meta, **row}
        unknown = set(full) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown result column(s) {sorted(unknown)}; columns: {COLUMNS}")
        if full.get("metric") not in known:
            raise ValueError(f"unknown metric {full.get('metric')!r}; known: {', '.join(known)}")
        value = full.get("value")
        if isinstance(value, (bool, str)) or value is None:
            raise ValueError(f"metric {full['metric']!r}: value {value!r} is not a number")
        full["value"] = float(value)
        full["flag"] = "" if math.isfinite(full["value"]) else "non-finite"
        full.setdefault("timestamp", _now())
        writer.writerow({c: _cell(full.get(c)) for c in COLUMNS})
    atomic_write_bytes(Path(path), buf.getvalue().encode())
    return Path(path)


def read_config_hash(path: str | Path) -> str | None:
    """The ``config_hash`` of an existing results CSV (``None`` if missing or empty)."""
    try:
        with open(path, newline="") as fh:
            first = next(csv.DictReader(fh), None)
    except FileNotFoundError:
        return None
    return (first or {}).get("config_hash") or None


class ResultsWriter:
    """Collects the rows of one run and writes them once, at the end.

    Use as a context manager: the CSV is written when the block ends normally and NOT when it
    raises, so a failed run never leaves a partial CSV::

        with ResultsWriter(P) as results:
            results.add("fid", 12.3, method="scflow", nfe=1, n_samples=1000)
    """

    def __init__(self, params: Mapping[str, Any], notebook: str | None = None,
                 device: str | None = None, path: str | Path | None = None) -> None:
        """Args:
            params: the run's resolved parameters (a :class:`scflow.repro.params.RunParams`).
            notebook: notebook name; defaults to ``params.notebook``.
            device: the device actually used (e.g. ``str(torch_device)``); defaults to the
                ``device`` parameter, with ``auto`` resolved to ``cuda``/``cpu``.
            path: where to write; defaults to ``results/<preset>/<run_name>.csv``
                (``results/<preset>/interactive/`` outside the runner, :func:`interactive`).
        """
        notebook = notebook or getattr(params, "notebook", "")
        preset = params.get("preset", "mini")
        run = params.get("run_name") or notebook
        self.path = Path(path) if path is not None else output_dir(preset) / f"{run}.csv"
        self.meta: dict[str, Any] = {
            "run": run, "notebook": notebook, "preset": preset,
            "seed": params.get("seed"), "feature_backend": params.get("fid_backend"),
            "config_hash": getattr(params, "config_hash", ""),
            "device": device or _device(params.get("device", "cpu")),
        }
        self.rows: list[dict[str, Any]] = []
        self._start = time.perf_counter()

    def add(self, metric: str, value: float, *, method: str, nfe: int | None = None,
            step: int | None = None, n_samples: int | None = None, seed: int | None = None,
            feature_backend: str | None = None) -> None:
        """Record one number (validated now, written at the end)."""
        if metric not in all_metrics():
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(all_metrics())}")
        if isinstance(value, (int, float)) and not math.isfinite(value):
            warnings.warn(f"{method} nfe={nfe} {metric} is {value}; kept and flagged",
                          stacklevel=2)
        row = {"metric": metric, "value": value, "method": method, "nfe": nfe, "step": step,
               "n_samples": n_samples, "timestamp": _now(),
               "wall_time_s": round(time.perf_counter() - self._start, 3)}
        row.update({k: v for k, v in (("seed", seed), ("feature_backend", feature_backend))
                    if v is not None})
        self.rows.append(row)

    def add_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record metric rows as the library returns them (e.g. :func:`scflow.evaluate.score_nfe`:
        ``metric, value, method``, optional ``nfe, step, n_samples``)."""
        for r in rows:
            self.add(r["metric"], r["value"], method=r["method"], nfe=r.get("nfe"),
                     step=r.get("step"), n_samples=r.get("n_samples"))

    def write(self) -> Path:
        """Write every row to :attr:`path` atomically and return it."""
        return write_results(self.rows, self.path, {**self.meta, "git_sha": git_sha()})

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.write()


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def save_figure(fig: Any, name: str, preset: str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as ``results/<preset>/figures/<name>.png`` atomically.

    Outside the runner the folder is ``results/<preset>/interactive/figures/`` (:func:`interactive`).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    path = output_dir(preset) / "figures" / f"{name}.png"
    atomic_write_bytes(path, buf.getvalue())
    return path
