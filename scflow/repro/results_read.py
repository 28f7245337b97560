"""The columns of a results CSV and every way to read one, always verified.

The format is described in :mod:`scflow.repro.results` (which writes the files and re-exports
these names). :func:`read_results` is the one way the project reads a results CSV's numbers and
:func:`results_state` what the runner learns about the CSV a run would write; both check the
digest and the structure first and name the file and what to do when it cannot be trusted.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scflow.cache import atomic_write_bytes
from scflow.repro.csvfile import DIGEST_COLUMN, CsvFileError, read_sealed, sealed_csv

DATA_COLUMNS = (
    "run", "notebook", "preset", "method", "nfe", "step", "metric", "value", "flag", "seed",
    "draw", "n_samples", "feature_backend", "git_sha", "code_version", "torch_threads",
    "config_hash", "device", "timestamp", "wall_time_s",
)
COLUMNS = (*DATA_COLUMNS, DIGEST_COLUMN)
"""CSV columns. ``nfe``/``step``/``n_samples`` are empty where they do not apply; ``draw`` is
the evaluation bank's noise set a sample metric was measured on (:func:`scflow.evaluate.bank_noise`;
empty for other rows: every run is scored on the same draws, so rows pair up by it); ``flag`` is
``non-finite`` when ``value`` is NaN or infinite (kept as is, never dropped);
``code_version`` is the source fingerprint of every code version that computed the run (the
ones that trained a resumed student first, joined by ``+``, :mod:`scflow.provenance`),
``torch_threads`` likewise the torch thread counts; ``wall_time_s`` is the time from the start
of the run to the moment the row was recorded; ``digest`` seals the file
(:mod:`scflow.repro.results`)."""
LATER_COLUMNS = ("draw", "code_version", "torch_threads")
"""Columns that CSVs written before them lack; readers take them as empty (:func:`is_results_header`)."""
REMEDY = "rerun with --force or restore it"


def is_results_header(fields: Sequence[str]) -> bool:
    """True for :data:`DATA_COLUMNS`, or those without some :data:`LATER_COLUMNS` (older CSVs)."""
    fields = list(fields)
    return fields == [c for c in DATA_COLUMNS if c in fields or c not in LATER_COLUMNS]


def _verified(path: Path, check_digest: bool = True) -> tuple[str, list[dict[str, str]]]:
    """The text of a results CSV and its rows (cells as text), digest and structure verified.

    Raises :class:`~scflow.repro.csvfile.CsvFileError` naming the file: not a results CSV,
    a value that is not a number, or (``ModifiedCsvError``) modified after its run.
    """
    text, header, rows = read_sealed(path, "results CSV", REMEDY, check_digest)
    if not is_results_header(header):
        raise CsvFileError(f"{path}: not a results CSV (its columns are not those of "
                           f"scflow.repro.results.COLUMNS): move it away or {REMEDY}")
    records = [{c: "" for c in DATA_COLUMNS} | dict(zip(header, r, strict=True)) for r in rows]
    for i, rec in enumerate(records, 2):
        try:
            float(rec["value"])
        except ValueError:
            raise CsvFileError(f"{path}: row {i}: value {rec['value'][:40]!r} is not a number: "
                               f"{REMEDY}") from None
    return text, records


def read_results(path: str | Path, allow_modified: bool = False) -> Any:
    """A results CSV as a ``pandas.DataFrame`` (columns :data:`COLUMNS`), after verifying it.

    The one way the project reads results. ``allow_modified=True`` also reads a file whose
    digest does not match (it must still be a results CSV with numeric values): for a report
    built knowingly from edited numbers.
    """
    import pandas as pd

    text, _ = _verified(Path(path), check_digest=not allow_modified)
    df = pd.read_csv(io.StringIO(text), dtype={"method": str, "metric": str,
                                               "code_version": str, "torch_threads": str})
    return df.reindex(columns=list(COLUMNS))  # an older file: its later columns empty


@dataclass(frozen=True)
class ResultsState:
    """What the runner needs to know about the CSV a run would write."""

    path: Path
    exists: bool
    config_hash: str | None = None  # of a verified file
    notebook: str | None = None
    problem: str | None = None  # why the file cannot be trusted (names it, says what to do)


def results_state(path: str | Path) -> ResultsState:
    """Whether ``path`` exists, and if so its configuration hash and notebook, or its problem."""
    path = Path(path)
    if not os.path.lexists(path):
        return ResultsState(path, False)
    try:
        first = _verified(path)[1][0]
    except CsvFileError as err:
        return ResultsState(path, True, problem=str(err))
    return ResultsState(path, True, first["config_hash"] or None, first["notebook"] or None)


def read_config_hash(path: str | Path) -> str | None:
    """The ``config_hash`` of a verified results CSV; ``None`` if there is none.

    Raises :class:`~scflow.repro.csvfile.CsvFileError` if the file exists but cannot be
    trusted (:func:`results_state`).
    """
    state = results_state(path)
    if state.problem:
        raise CsvFileError(state.problem)
    return state.config_hash


def copy_results(source: str | Path, dest: str | Path, run: str) -> Path:
    """Copy a verified results CSV to ``dest`` with its ``run`` column set to ``run``, resealed."""
    rows = [{**r, "run": run} for r in _verified(Path(source))[1]]
    atomic_write_bytes(Path(dest), sealed_csv(DATA_COLUMNS,
                                              [[r[c] for c in DATA_COLUMNS] for r in rows]))
    return Path(dest)


_ALLOW_MODIFIED: contextvars.ContextVar[bool] = contextvars.ContextVar("allow_modified",
                                                                      default=False)


@contextlib.contextmanager
def allowing_modified() -> Iterator[None]:
    """Inside the block, :func:`scflow.repro.tables.load_results` uses modified CSVs (with a
    warning) instead of refusing them: the report's ``--allow-modified``."""
    token = _ALLOW_MODIFIED.set(True)
    try:
        yield
    finally:
        _ALLOW_MODIFIED.reset(token)


def modified_allowed() -> bool:
    """True inside :func:`allowing_modified`."""
    return _ALLOW_MODIFIED.get()
