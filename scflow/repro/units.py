"""Our numbers per unit: a training seed and a draw of the evaluation bank.

**Seed replicas.** A paper row's run ``<run>`` (its CSV ``results/<preset>/<run>.csv``, seed as
recorded in the CSV's ``seed`` column, normally the preset's 0) may have replicas with other
seeds, found by name: ``<run>_s<k>.csv`` holds seed ``k`` (its run file
``papermill_runs/<run>_s<k>.yaml`` is ``<run>.yaml`` plus ``parameters: {seed: k}``; the CSV's
``seed`` column must agree with ``k``).

**Draws.** Every run is scored on the same noise sets of the evaluation bank
(:func:`scflow.evaluate.bank_noise`); a sample metric's row records its set in the column
``draw``. A number of ours is therefore held per **unit** ``(seed, draw)``:

- a row without ``draw`` (CSVs written before the bank) is one unit ``(seed, None)``;
- a run of :data:`SHARED_RUNS` (the preset's teacher, which the students of every seed distil)
  has no seed of its own: its units are ``(None, draw)`` and pair with every seed's same draw.

A cell's mean and standard error are those of :func:`cell_interval` (over seeds where there
are two or more, else over draws: :mod:`scflow.repro.paired`), the ones the claims use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import pandas as pd

from scflow.repro.paired import Interval, paired_interval

Unit = tuple[int | None, int | None]
"""``(seed, draw)``; seed None for a shared run, draw None for a row without draws."""
SHARED_RUNS = frozenset({"01_teacher"})
"""Runs of the preset's teacher: one net shared by every student seed (no seed replicas)."""
REPLICA = re.compile(r"^(?P<base>.+)_s(?P<seed>\d+)$")
"""Name of a seed replica run: ``<run>_s<k>`` is ``<run>`` with seed ``k``."""


def _recorded_seeds(results: pd.DataFrame) -> dict[str, int | None]:
    """Per run, the first seed its CSV records (None if the column is empty)."""
    first = pd.to_numeric(results.seed, errors="coerce").groupby(results.run).first()
    return {str(run): None if math.isnan(v) else int(v) for run, v in first.items()}


def replica_map(results: pd.DataFrame) -> dict[str, dict[int, str]]:
    """``{run: {seed: run name}}`` for every run in ``results`` and its seed replicas.

    A run's own CSV counts with the seed it records (0 if none); ``<run>_s<k>`` adds seed ``k``.
    Raises ``ValueError`` if a replica's recorded seed disagrees with its name or two files
    claim the same seed of one run (their numbers would silently be averaged twice).
    """
    recorded_seeds = _recorded_seeds(results)
    names = sorted(recorded_seeds)
    out: dict[str, dict[int, str]] = {}
    for name in names:
        seed = recorded_seeds[name]
        out.setdefault(name, {})[0 if seed is None else seed] = name
    for name in names:
        m = REPLICA.match(name)
        if not m:
            continue
        base, k = m["base"], int(m["seed"])
        recorded = recorded_seeds[name]
        if recorded is not None and recorded != k:
            raise ValueError(f"seed replica {name!r} records seed {recorded} in its CSV, but "
                             f"its name says seed {k}: rename it or fix its run file")
        seeds = out.setdefault(base, {})
        if k in seeds and seeds[k] != name:
            raise ValueError(f"runs {seeds[k]!r} and {name!r} both hold seed {k} of {base!r}")
        seeds[k] = name
    return {run: dict(sorted(s.items())) for run, s in out.items()}


def seed_replicas(results: pd.DataFrame, run: str) -> dict[int, str]:
    """``{seed: run name}`` of ``run`` and its replicas ``<run>_s<k>`` present in ``results``
    (empty if none); see the module docstring for the naming rule."""
    return replica_map(results).get(run, {})


def _optional_int(values: pd.Series) -> list[int | None]:
    return [None if math.isnan(v) else int(v) for v in pd.to_numeric(values, errors="coerce")]


def draw_index(results: pd.DataFrame) -> dict[tuple[str, str, str, int | None],
                                              dict[int | None, float]]:
    """``{(run name, method, metric, nfe): {draw: value}}`` over every row; ``nfe`` None for
    rows without one (the FID floors), ``draw`` None for rows without one. The last row of a
    key wins, as in a CSV that accumulated a rerun."""
    out: dict[tuple[str, str, str, int | None], dict[int | None, float]] = {}
    for r, m, k, n, d, v in zip(results.run, results.method, results.metric,
                                _optional_int(results.nfe), _optional_int(results.draw),
                                pd.to_numeric(results.value, errors="coerce"), strict=True):
        out.setdefault((str(r), str(m), str(k), n), {})[d] = float(v)
    return out


class UnitTable:
    """Our numbers of a results frame, per (run, method, metric, nfe) and unit (module text)."""

    def __init__(self, results: pd.DataFrame) -> None:
        self.replicas = replica_map(results)
        self.index = draw_index(results)

    def cell(self, run: str, method: str, nfe: int | None,
             metric: str = "fid") -> dict[Unit, float]:
        """``{(seed, draw): value}`` of one cell over ``run``'s seed replicas (empty if none)."""
        out: dict[Unit, float] = {}
        for seed, name in self.replicas.get(run, {}).items():
            key_seed = None if run in SHARED_RUNS else seed
            for draw, v in self.index.get((name, method, metric, nfe), {}).items():
                out[(key_seed, draw)] = v
        return out

    def seed_means(self, run: str, method: str, nfe: int | None,
                   metric: str = "fid") -> dict[int, float]:
        """``{seed: mean over its draws}`` of one cell (a shared run's seed is its CSV's)."""
        per_seed: dict[int, list[float]] = {}
        for seed, name in self.replicas.get(run, {}).items():
            for v in self.index.get((name, method, metric, nfe), {}).values():
                per_seed.setdefault(seed, []).append(v)
        return {s: sum(vs) / len(vs) for s, vs in per_seed.items()}

    def row_units(self, run: str, method: str, metric: str = "fid") -> frozenset[Unit]:
        """Every unit of ``run``'s ``metric`` for ``method``, over the NFEs it was measured at."""
        names = {name: (None if run in SHARED_RUNS else seed)
                 for seed, name in self.replicas.get(run, {}).items()}
        return frozenset((names[r], d) for (r, m, k, n), vals in self.index.items()
                         if r in names and m == method and k == metric and n is not None
                         for d in vals)

    def has_run(self, run: str) -> bool:
        return bool(self.replicas.get(run))


def unit_value(cell: Mapping[Unit, float], unit: Unit) -> float | None:
    """A cell's number at ``unit = (seed, draw)``: its value at that seed (a shared cell's at any
    seed) and draw, or the mean over the seed's draws where ``draw`` is None; None if absent."""
    seed, draw = unit
    xs = [v for (s, d), v in cell.items()
          if (s is None or seed is None or s == seed) and (draw is None or d == draw)]
    return sum(xs) / len(xs) if xs else None


def cell_interval(values: Mapping[Unit, float]) -> Interval | None:
    """Mean and standard error of one cell's units (None if it has none): over seeds where it
    has two or more, else over draws (:func:`scflow.repro.paired.paired_interval`)."""
    finite = {u: v for u, v in values.items() if math.isfinite(v)}
    return paired_interval(finite) if finite else None


def units_words(n_seeds: int, n_draws: int, evaluation_only: bool = False) -> str:
    """What an interval is over, in words: ``3 seeds x 5 draws``, ``3 seeds``, ``5 draws of one
    seed`` (``evaluation_only``: adding that training noise is not measured) or ``one value``."""
    draws = f"{n_draws} draw{'s' if n_draws != 1 else ''}"
    if n_seeds >= 2:
        return f"{n_seeds} seeds x {draws}" if n_draws else f"{n_seeds} seeds"
    if n_draws >= 2:
        tail = ": evaluation noise only, training noise not measured" if evaluation_only else ""
        return f"{draws} of one seed{tail}"
    return "one value"
