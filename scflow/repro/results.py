"""One tidy, long-format CSV per run, written atomically at the end of the run.

Each row is one number: ``(method, nfe, step, metric) -> value`` plus the bookkeeping that makes
it traceable (run, notebook, preset, seed, git sha, code version, torch threads, config hash,
device, time). Rows accumulate
in memory and the file appears only once, complete (temp file + rename): a crashed run leaves
no CSV, so the runner reruns it. Files live in ``results/<preset>/<run>.csv``; figures in
``results/<preset>/figures/``; ``results/smoke/`` is git-ignored, so smoke numbers never reach
the paper tables.

**Format.** A plain CSV with the header :data:`COLUMNS`. Its last column, ``digest``, seals the
file (:mod:`scflow.repro.csvfile`): every row holds the same 16 hex digits, the start of the
sha256 of the JSON list ``[header, row 1, row 2, ...]`` with every row's cells as written and
the digest column left out. ``pandas.read_csv(path)`` reads a results CSV as it is. Every reader
of the project goes through :mod:`scflow.repro.results_read` (``read_results`` for the data,
``results_state`` for what the runner needs: the configuration hash, or why the file cannot be
trusted), which verifies the digest: an edited value, a duplicated, dropped or reordered row is
reported as "modified after its run: rerun with --force or restore it", never used silently.

Metric names are fixed: the image metrics are documented in :data:`scflow.metrics.METRIC_DOCS`,
the others in :data:`EXTRA_METRICS`; any other name is rejected.
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scflow import provenance
from scflow.cache import REPO_ROOT, atomic_write_bytes
from scflow.repro.csvfile import CsvFileError, sealed_csv
from scflow.repro.presets import PRESET_NAMES
from scflow.repro.results_read import (  # noqa: F401 - the columns and readers, re-exported
    COLUMNS,
    DATA_COLUMNS,
    LATER_COLUMNS,
    REMEDY,
    is_results_header,
    read_config_hash,
    read_results,
)

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
    "eval_seconds": "wall-clock seconds to score one net on the evaluation bank at NFE 1-16",
}


def all_metrics() -> dict[str, str]:
    """Every allowed metric name -> its one-line definition."""
    from scflow.metrics import METRIC_DOCS

    return {**METRIC_DOCS, **EXTRA_METRICS}


RESULTS_ENV = "SCFLOW_RESULTS"


def results_root() -> Path:
    """``$SCFLOW_RESULTS`` if set, else ``<repo>/results``; always absolute.

    A relative ``$SCFLOW_RESULTS`` is taken from the current folder; the runner resolves it
    once and passes the absolute path to its kernels (which run in the repository root), so
    runner and notebook agree. Raises :class:`CsvFileError` when it names something that is
    not a folder.
    """
    root = Path(os.environ.get(RESULTS_ENV) or REPO_ROOT / "results").expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise CsvFileError(f"{RESULTS_ENV}={root} is not a folder: point it at a folder "
                           f"(created if missing) or unset it for {REPO_ROOT / 'results'}")
    return root


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
    """Short HEAD sha of the repository, ``+dirty`` if tracked files (outside results/) changed;
    ``unknown`` outside git; ``$SCFLOW_GIT_SHA`` if set (:func:`scflow.provenance.git_revision`)."""
    return provenance.git_revision(REPO_ROOT)


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
    cells = []
    for row in rows:
        full = {**meta, **row}
        unknown = set(full) - set(DATA_COLUMNS)
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
        cells.append([_cell(full.get(c)) for c in DATA_COLUMNS])
    atomic_write_bytes(Path(path), sealed_csv(DATA_COLUMNS, cells))
    return Path(path)


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
        self._lineage_mark = provenance.mark()  # students trained or resumed from here on

    def add(self, metric: str, value: float, *, method: str, nfe: int | None = None,
            step: int | None = None, n_samples: int | None = None, seed: int | None = None,
            feature_backend: str | None = None, draw: int | None = None) -> None:
        """Record one number (validated now, written at the end)."""
        if metric not in all_metrics():
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(all_metrics())}")
        if isinstance(value, (int, float)) and not math.isfinite(value):
            warnings.warn(f"{method} nfe={nfe} {metric} is {value}; kept and flagged",
                          stacklevel=2)
        row = {"metric": metric, "value": value, "method": method, "nfe": nfe, "step": step,
               "draw": draw, "n_samples": n_samples, "timestamp": _now(),
               "wall_time_s": round(time.perf_counter() - self._start, 3)}
        row.update({k: v for k, v in (("seed", seed), ("feature_backend", feature_backend))
                    if v is not None})
        self.rows.append(row)

    def code_meta(self) -> dict[str, str]:
        """``code_version`` and ``torch_threads`` of this run: those of every student it trained
        or resumed (earlier code first, :mod:`scflow.provenance`), then this process's."""
        segs = [*provenance.seen_since(self._lineage_mark), provenance.current_segment(0, 0)]
        return {"code_version": provenance.join_unique(s["code"] for s in segs),
                "torch_threads": provenance.join_unique(s["threads"] for s in segs)}

    def add_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record metric rows as the library returns them (e.g. :func:`scflow.evaluate.score_nfe`,
        :func:`scflow.evaluate.evaluate_bank`: ``metric, value, method``, optional ``nfe, step,
        n_samples, draw``)."""
        for r in rows:
            self.add(r["metric"], r["value"], method=r["method"], nfe=r.get("nfe"),
                     step=r.get("step"), n_samples=r.get("n_samples"), draw=r.get("draw"))

    def write(self) -> Path:
        """Write every row to :attr:`path` atomically and return it."""
        return write_results(self.rows, self.path,
                             {**self.meta, "git_sha": git_sha(), **self.code_meta()})

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
