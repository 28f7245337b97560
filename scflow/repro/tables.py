"""Results CSVs and the paper's numbers as comparable tables (no text, no figures).

The paper's numbers are data: ``scflow/repro/data/paper_numbers.csv`` (Tables 3-6: table, row,
the run and method reproducing it, the paper's FID per NFE) and ``paper_numbers_t2i.csv``
(Tables 1-2). :mod:`scflow.repro.report` writes them as Markdown, :mod:`scflow.repro.claims`
judges the paper's claims on them, :mod:`scflow.repro.report_figures` draws them.

**Seed replicas.** A paper row's run ``<run>`` (its CSV ``results/<preset>/<run>.csv``, seed as
recorded in the CSV's ``seed`` column, normally the preset's 0) may have replicas with other
seeds, found by name: ``<run>_s<k>.csv`` holds seed ``k`` (its run file
``papermill_runs/<run>_s<k>.yaml`` is ``<run>.yaml`` plus ``parameters: {seed: k}``; the CSV's
``seed`` column must agree with ``k``). Our number for a (table, row) is the mean over the
replicas present; with two or more, tables read ``mean ± std`` (sample std) and the FID-vs-NFE
figures draw the std as error bars; with one, the number is shown as it is. Claims are judged
per seed (:mod:`scflow.repro.claims`).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from scflow.repro.csvfile import CsvFileError, ModifiedCsvError
from scflow.repro.results import COLUMNS
from scflow.repro.results_read import modified_allowed, read_results

PAPER_NUMBERS = Path(__file__).with_name("data") / "paper_numbers.csv"
PAPER_NUMBERS_T2I = Path(__file__).with_name("data") / "paper_numbers_t2i.csv"
T2I_PAPER_COLUMNS = {"fid": "fid", "precision": "precision", "recall": "recall",
                     "sec_per_image": "time_s"}
"""Our metric -> the column of ``paper_numbers_t2i.csv`` holding the paper's number for it."""
NFES = (1, 2, 4, 8, 16, 25)
TABLE_NFES: dict[str, tuple[int, ...]] = {
    "3": (1, 2, 25), "4": (1, 2, 4, 8, 16), "5": (1, 2, 4, 8, 16), "6": (1, 2, 4, 8, 16),
    "F": (1, 2, 4, 8, 16),
}
"""NFE columns shown per table: the paper's (Table 3: NFE 1, 2; the teacher also at 25)."""
TABLE_TITLES = {
    "3": "Table 3: one- and two-step baselines", "4": "Table 4: ablation of the loss terms",
    "5": "Table 5: loss weights (lambda_GAN, lambda_RF, lambda_BI)",
    "6": "Table 6: t_trunc, target EMA mu, t_skip",
    "F": "Fidelity: the paper's switches vs the authors' code's (no paper numbers)",
}
MISSING = "missing"
REPLICA = re.compile(r"^(?P<base>.+)_s(?P<seed>\d+)$")
"""Name of a seed replica run: ``<run>_s<k>`` is ``<run>`` with seed ``k``."""


def load_paper_numbers(path: str | Path = PAPER_NUMBERS) -> pd.DataFrame:
    """The paper's Tables 3-6 in long form: table, row, run, method, nfe, paper (FID or NaN).

    Row order is the file's (= the paper's); ``table`` is a string ("3" ... "6", "F").
    """
    wide = pd.read_csv(path, comment="#", dtype={"table": str})
    wide["order"] = range(len(wide))
    long = wide.melt(id_vars=["table", "row", "run", "method", "order"],
                     value_vars=[f"fid_nfe{n}" for n in NFES], var_name="nfe", value_name="paper")
    long["nfe"] = long["nfe"].str.removeprefix("fid_nfe").astype(int)
    return long.sort_values(["order", "nfe"]).reset_index(drop=True)


def load_results(folder: str | Path, allow_modified: bool | None = None) -> pd.DataFrame:
    """Every results CSV of a folder, verified, concatenated (``run`` = file stem); empty frame
    if none.

    Older files without the later columns (:data:`scflow.repro.results.LATER_COLUMNS`) are
    read with those columns empty.
    A CSV that cannot be trusted (modified after its run, not a results CSV, unreadable) stops
    the load with one :class:`~scflow.repro.csvfile.CsvFileError` naming every such file. With
    ``allow_modified`` (default: inside :func:`~scflow.repro.results_read.allowing_modified`)
    modified files are read as they are and the others skipped, each with a warning; the
    frame's ``attrs["modified"]`` lists the modified files' names.
    """
    allow = modified_allowed() if allow_modified is None else allow_modified
    frames, problems, modified = [], [], []
    for path in sorted(Path(folder).glob("*.csv")):
        try:
            df = read_results(path)
        except ModifiedCsvError as err:
            if not allow:
                problems.append(str(err))
                continue
            try:
                df = read_results(path, allow_modified=True)
            except CsvFileError as err2:
                print(f"warning: {err2}; skipped", file=sys.stderr)
                continue
            print(f"warning: {err}; used as it is (allow_modified)", file=sys.stderr)
            modified.append(path.name)
        except CsvFileError as err:
            if not allow:
                problems.append(str(err))
            else:
                print(f"warning: {err}; skipped", file=sys.stderr)
            continue
        frames.append(df.assign(run=path.stem))
    if problems:
        raise CsvFileError("\n".join(problems))
    out = (pd.concat(frames, ignore_index=True) if frames
           else pd.DataFrame(columns=list(COLUMNS)))
    out.attrs["modified"] = modified
    return out


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


def value_index(results: pd.DataFrame) -> dict[tuple[str, str, str, int], float]:
    """``{(run, method, metric, nfe): value}`` over the rows with an NFE (the last row wins,
    as in a CSV that accumulated a rerun)."""
    sel = results.assign(nfe=pd.to_numeric(results.nfe, errors="coerce")).dropna(subset=["nfe"])
    return {(r, str(m), str(k), int(n)): float(v) for r, m, k, n, v in
            zip(sel.run, sel.method, sel.metric, sel.nfe, sel.value, strict=True)}


def our_values(results: pd.DataFrame, run: str, method: str, nfe: int,
               metric: str = "fid") -> dict[int, float]:
    """``{seed: value}`` of (run, method, nfe, metric) over ``run``'s seed replicas."""
    out = {}
    for seed, name in seed_replicas(results, run).items():
        sel = results[(results.run == name) & (results.method == method)
                      & (results.metric == metric) & (pd.to_numeric(results.nfe) == nfe)]
        if not sel.empty:
            out[seed] = float(sel.value.iloc[-1])
    return out


def mean_std(values: Sequence[float]) -> tuple[float | None, float]:
    """(mean, sample std) of the seeds' values; ``(None, nan)`` if none, std NaN for one."""
    if not values:
        return None, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def our_value(results: pd.DataFrame, run: str, method: str, nfe: int,
              metric: str = "fid") -> float | None:
    """Our number for (run, method, nfe, metric): the mean over the run's seed replicas, or
    ``None`` if that run or row is missing."""
    return mean_std(list(our_values(results, run, method, nfe, metric).values()))[0]


def compare_table(results: pd.DataFrame, paper: pd.DataFrame, table: str,
                  metric: str = "fid") -> pd.DataFrame:
    """One paper table in long form: row, run, method, nfe, ours (mean over seeds; NaN if
    missing), ours_std (NaN under two seeds), n_seeds, paper, run_done.

    Only the NFE columns of :data:`TABLE_NFES` are kept.
    """
    sub = paper[(paper.table == table) & paper.nfe.isin(TABLE_NFES[table])].copy()
    per_seed = [list(our_values(results, r.run, r.method, r.nfe, metric).values())
                for r in sub.itertuples()]
    stats = [mean_std(vals) for vals in per_seed]
    sub["ours"] = [math.nan if m is None else m for m, _ in stats]
    sub["ours"] = sub["ours"].astype(float)
    sub["ours_std"] = [sd for _, sd in stats]
    sub["n_seeds"] = [len(vals) for vals in per_seed]
    replicas = replica_map(results)
    sub["run_done"] = [bool(replicas.get(run)) for run in sub.run]
    return sub[["row", "run", "method", "nfe", "ours", "ours_std", "n_seeds", "paper",
                "run_done"]].reset_index(drop=True)


def load_paper_t2i(path: str | Path = PAPER_NUMBERS_T2I) -> pd.DataFrame:
    """The paper's Tables 1-2 (text-to-image): table, row, run, method, nfe, fid, clip,
    precision, recall, time_s (NaN where the paper reports nothing); file order."""
    return pd.read_csv(path, comment="#", dtype={"table": str})


def missing_runs(results: pd.DataFrame, paper: pd.DataFrame) -> list[str]:
    """Runs named by the paper tables that have no results CSV (in table order)."""
    have = set(results.run)
    return list(dict.fromkeys(r for r in paper.run if r not in have))


def metric_by_method(results: pd.DataFrame, metric: str,
                     runs: Sequence[tuple[str, str, str]], stat: str = "mean") -> pd.DataFrame:
    """``metric`` per NFE for (label, run, method) triples: labels as rows, NFEs as columns.

    ``stat``: ``"mean"`` over the run's seed replicas, or their sample ``"std"`` (NaN under
    two seeds).
    """
    if stat not in ("mean", "std"):
        raise ValueError(f"stat must be 'mean' or 'std' (got {stat!r})")
    replicas, index = replica_map(results), value_index(results)
    out = {}
    for label, run, method in runs:
        per_nfe: dict[int, list[float]] = {}
        for name in replicas.get(run, {}).values():
            for (r, m, k, n), v in index.items():
                if r == name and m == method and k == metric:
                    per_nfe.setdefault(n, []).append(v)
        out[label] = {n: mean_std(vs)[0 if stat == "mean" else 1]
                      for n, vs in sorted(per_nfe.items())}
    df = pd.DataFrame.from_dict(out, orient="index")
    return df.reindex(sorted(df.columns), axis=1) if len(df.columns) else df


STUDY_NOTEBOOK = "09_training_budget"


def wall_times(results: pd.DataFrame) -> pd.DataFrame:
    """Per run: notebook, config hash, wall time (s; the last row's ``wall_time_s``), alias flag.

    A run whose config hash an earlier run (by name) already has is an alias: its CSV is a copy
    and its time is not counted again.
    """
    rows, seen = [], set()
    for run, grp in results.groupby("run", sort=True):
        h = str(grp.config_hash.iloc[0])
        rows.append({"run": run, "notebook": grp.notebook.iloc[0], "config_hash": h,
                     "wall_time_s": float(pd.to_numeric(grp.wall_time_s).max()),
                     "alias": h in seen, "git_sha": grp.git_sha.iloc[0]})
        seen.add(h)
    return pd.DataFrame(rows, columns=["run", "notebook", "config_hash", "wall_time_s", "alias",
                                       "git_sha"])


METHOD_RUNS: tuple[tuple[str, str, str], ...] = (
    ("teacher", "01_teacher", "teacher"), ("rectified", "table3_rectified", "rectified"),
    ("rectified+distill", "table3_rectified", "rectified+distill"), ("CD", "table4_cd", "cd"),
    ("+GAN", "table4_gan", "cd+trunc+gan"), ("+RF", "table4_rf", "cd+trunc+gan+rf"),
    ("+BI (SCFlow)", "table4_bi", "scflow"),
    ("SCFlow, code switches", "table4_bi_fidelity_code", "scflow"),
)
"""(label, run, method) of every method shown in the consistency / saturation section."""
