"""Aggregation: results CSVs -> the paper's Tables 1-6 with the paper's numbers beside ours.

``python -m scflow.repro.report --preset mini`` (or notebook ``07_tables_and_figures``) reads every
``results/<preset>/*.csv``, matches each row of the paper's tables (data file
``scflow/repro/data/paper_numbers.csv``: table, row, the run and method reproducing it, the paper's
FID per NFE) to our numbers, and judges each claim of the paper by the explicit rules of
:mod:`scflow.repro.claims`. A run that has not been done shows as ``missing``; nothing crashes on a
partial grid. :func:`write_report` writes ``results/<preset>/REPORT.md``.

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

import argparse
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scflow.repro.results import COLUMNS, results_dir

PAPER_NUMBERS = Path(__file__).with_name("data") / "paper_numbers.csv"
PAPER_NUMBERS_T2I = Path(__file__).with_name("data") / "paper_numbers_t2i.csv"
T2I_PAPER_COLUMNS = {"fid": "fid", "precision": "precision", "recall": "recall",
                     "sec_per_image": "time_s"}
"""Our metric -> the column of ``paper_numbers_t2i.csv`` holding the paper's number for it."""
T2I_TITLES = {
    "1": "Table 1 (text-to-image; paper: COCO 2014, FID-30k)",
    "2": "Table 2 (text-to-image; paper: COCO 2017, FID-5k, seconds per image)",
}
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


def load_results(folder: str | Path) -> pd.DataFrame:
    """Every results CSV of a folder concatenated (``run`` = file stem); empty frame if none.

    Files whose columns are not :data:`scflow.repro.results.COLUMNS` are skipped with a warning.
    """
    frames = []
    for path in sorted(Path(folder).glob("*.csv")):
        df = pd.read_csv(path, dtype={"method": str, "metric": str})
        if list(df.columns) != list(COLUMNS):
            print(f"warning: {path} is not a results CSV, skipped", file=sys.stderr)
            continue
        frames.append(df.assign(run=path.stem))
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)


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


def t2i_markdown(results: pd.DataFrame, paper_t2i: pd.DataFrame, table: str) -> str:
    """One text-to-image table: per (row, NFE), ours / paper for FID, precision, recall and
    seconds per image; our prompt accuracy beside the paper's CLIP score (not the same metric:
    see ``scflow.metrics.METRIC_DOCS``)."""
    sub = paper_t2i[paper_t2i.table == table]
    done = set(results.run)
    labels = {"fid": "FID", "precision": "precision", "recall": "recall",
              "sec_per_image": "s / image"}
    lines = ["| row | NFE | " + " | ".join(f"{labels[m]}: ours / paper" for m in T2I_PAPER_COLUMNS)
             + " | prompt accuracy (ours) | CLIP (paper) |",
             "|" + "---|" * (len(T2I_PAPER_COLUMNS) + 4)]
    for r in sub.itertuples():
        cells = [f"{_ours_cell(results, r, m, done)} / {_paper_num(float(getattr(r, col)))}"
                 for m, col in T2I_PAPER_COLUMNS.items()]
        lines.append(f"| {r.row} | {r.nfe} | " + " | ".join(cells) + f" | "
                     f"{_ours_cell(results, r, 'prompt_accuracy', done)} | "
                     f"{_paper_num(float(r.clip))} |")
    return "\n".join(lines)


def _ours_cell(results: pd.DataFrame, row: Any, metric: str, done: set[str]) -> str:
    """Our number for a paper row, ``n/e`` if its run did not evaluate it, else ``missing``."""
    v = our_value(results, row.run, row.method, int(row.nfe), metric)
    return _num(v) if v is not None else "n/e" if row.run in done else MISSING


def t2i_speed_line(results: pd.DataFrame) -> str:
    """The seconds-per-image ratio 2-RF NFE 25 / SCFlow NFE 1, ours beside the paper's."""
    slow = our_value(results, "t2i", "2-rf", 25, "sec_per_image")
    fast = our_value(results, "t2i", "scflow", 1, "sec_per_image")
    ours = f"{slow / fast:.1f}x ({_num(slow)} s vs {_num(fast)} s)" if slow and fast else MISSING
    return (f"Seconds per image, 2-RF at NFE 25 / SCFlow at NFE 1 (with the VAE decode, one "
            f"harness): ours {ours}; paper 0.88 s / 0.09 s = 9.8x (A100).")


def missing_runs(results: pd.DataFrame, paper: pd.DataFrame) -> list[str]:
    """Runs named by the paper tables that have no results CSV (in table order)."""
    have = set(results.run)
    return list(dict.fromkeys(r for r in paper.run if r not in have))


def _num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def _mean_pm(mean: float | None, std: float) -> str:
    """``mean ± std`` when there is a spread (two or more seeds), else the number alone."""
    return _num(mean) if math.isnan(std) else f"{_num(mean)} ± {_num(std, 2)}"


def _paper_num(x: float) -> str:
    """The paper's number as printed there (no rounding)."""
    return "-" if math.isnan(x) else f"{x:g}"


def table_markdown(cmp: pd.DataFrame) -> str:
    """A compare table as Markdown: one line per row, cells ``ours / paper`` per NFE.

    ``ours`` is ``mean ± std`` over seeds where a row has two or more, else the number; it reads
    ``missing`` where the run has not been done and ``n/e`` where the run did not
    evaluate that NFE; ``paper`` reads ``-`` where the paper reports no number.
    """
    nfes = list(dict.fromkeys(cmp.nfe))
    head = "| row | run | " + " | ".join(f"NFE {n}: ours / paper" for n in nfes) + " |"
    lines = [head, "|" + "---|" * (len(nfes) + 2)]
    for (row, run), grp in cmp.groupby(["row", "run"], sort=False):
        cells = []
        for n in nfes:
            r = grp[grp.nfe == n].iloc[0]
            ours = (_mean_pm(r.ours, r.ours_std) if not math.isnan(r.ours)
                    else "n/e" if r.run_done else MISSING)
            cells.append(f"{ours} / {_paper_num(r.paper)}")
        lines.append(f"| {row} | `{run}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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


def scale_lines(preset: str, results: pd.DataFrame) -> list[str]:
    """The preset's scale beside the paper's, for the report's first section."""
    from scflow.repro.presets import preset_values

    p = preset_values(preset)
    n_samples = sorted({int(x) for x in pd.to_numeric(
        results[results.metric == "fid"].n_samples, errors="coerce").dropna()})
    backends = sorted({str(b) for b in results.feature_backend.dropna()})
    data = p["dataset"] + (f" ({p['data_dir']})" if p["dataset"] == "folder" else "")
    limit = f", at most {p['data_limit']} images" if p["data_limit"] else ""
    # the budget study (notebook 09) chooses settings and runs apart from the tables' batch: its
    # time is said on its own, not added to the grid's or spanned with it
    study = results[results.notebook == STUDY_NOTEBOOK]
    results = results[results.notebook != STUDY_NOTEBOOK]
    times = wall_times(results)
    total = times[~times.alias].wall_time_s.sum() if len(times) else 0.0
    study_min = wall_times(study).wall_time_s.sum() / 60 if len(study) else 0.0
    return [
        "| | this report | paper (CelebA-HQ 256) |", "|---|---|---|",
        f"| data | {data}{_data_size(p)}{limit}, {p['resolution']} px | 30k images, 256 px, "
        f"SD-VAE latents 4x32x32 |",
        f"| teacher | `{p['teacher_arch']}`, {p['teacher_steps']} steps at batch "
        f"{p['teacher_batch']} | LFM (ADM UNet), pretrained |",
        f"| distillation | {p['distill_steps']} updates at batch {p['distill_batch']} "
        f"(warm-ups RF/BI {p['warmup_rf']}/{p['warmup_bi']}) | 200 epochs at batch 32 |",
        f"| rectified flow | {p['rectified_pairs']} pairs by {p['rectified_euler_steps']} Euler "
        f"steps; reflow {p['rectified_reflow_steps']} + distil {p['rectified_distill_steps']} "
        f"updates at batch {p['rectified_batch']} | 50k pairs by 500 steps; 50 + 10 epochs |",
        f"| FID | features `{', '.join(backends) or p['fid_backend']}`, "
        f"{', '.join(map(str, n_samples)) or p['n_eval']} samples per FID | Inception, 50k |",
        f"| text-to-image | `{p['t2i_arch']}` on digit captions: 1-RF {p['t2i_teacher_steps']} "
        f"steps, reflow on {p['reflow_pairs']} pairs -> 2-RF {p['reflow_steps']} steps, CFG "
        f"{p['t2i_guidance']}; students {p['t2i_distill_steps']} updates; FID on "
        f"{p['n_eval']} prompts, prompt accuracy for CLIP | 2-RF from SD 1.5, 18k iterations "
        f"on LAION; COCO prompts; CLIP score |",
        f"| seeds | {_seeds_cell(results, p['seed'])} | one (not stated) |",
        f"| wall time | {total / 60:.1f} min over {int((~times.alias).sum())} runs "
        f"(sum of the runs' wall_time_s; cached artefacts are reused, aliases not counted); "
        f"first start to last finish {_span_minutes(results)} (runs overlap with --jobs)"
        + (f"; the budget study (notebook 09) {study_min:.1f} min more" if len(study) else "")
        + " | - |",
    ]


def _seeds_cell(results: pd.DataFrame, preset_seed: int) -> str:
    """``one (<seed>)``, or which runs have which seeds where replicas exist."""
    multi = {run: seeds for run, seeds in replica_map(results).items() if len(seeds) > 1}
    if not multi:
        return f"one ({preset_seed})"
    groups: dict[tuple[int, ...], list[str]] = {}
    for run, seeds in multi.items():
        groups.setdefault(tuple(seeds), []).append(f"`{run}`")
    parts = [f"{', '.join(map(str, s))} for {', '.join(runs)}" for s, runs in groups.items()]
    return "; ".join(parts) + f" (tables: mean ± std); one ({preset_seed}) for the other runs"


def _span_minutes(results: pd.DataFrame) -> str:
    """Minutes from the earliest run start (timestamp - wall_time_s) to the latest row."""
    try:
        ts = pd.to_datetime(results.timestamp, utc=True)
        start = (ts - pd.to_timedelta(pd.to_numeric(results.wall_time_s), unit="s")).min()
        return f"{(ts.max() - start).total_seconds() / 60:.1f} min"
    except (ValueError, TypeError, KeyError):
        return "-"


def _data_size(p: dict[str, Any]) -> str:
    if p["dataset"] != "digits":
        return ""
    try:
        from sklearn.datasets import load_digits

        return f", {len(load_digits().images)} images"
    except Exception:  # noqa: BLE001 - the size is informative only
        return ""


def regenerate_command(preset: str) -> str:
    """The command that regenerates the report (stated in the generated file)."""
    return (f"`make reproduce PRESET={preset}` (all runs, then this report), or "
            f"`python -m scflow.repro.report --preset {preset}` (this file only, from the CSVs)")


def build_report(preset: str, folder: str | Path | None = None,
                 figures: Sequence[tuple[str, str]] = ()) -> str:
    """REPORT.md's text for the CSVs of ``folder`` (default ``results/<preset>/``).

    ``figures``: (caption, path relative to the folder) pairs to embed, e.g. the PNGs that
    notebook 07 saves; missing files are listed as missing.
    """
    from scflow.repro.claims import CLAIMS, claims_markdown, differences_markdown, judge_all

    folder = Path(folder) if folder is not None else results_dir(preset)
    results = load_results(folder)
    paper = load_paper_numbers()
    out = [f"<!-- generated: do not edit. Regenerate with {regenerate_command(preset)} -->",
           f"# SCFlow in miniature: results of preset `{preset}`", "",
           f"Generated from `results/{preset}/*.csv` by `scflow/repro/report.py`. Regenerate: "
           f"{regenerate_command(preset)}.", "",
           "FID here is computed on the preset's features and sample count: its absolute scale "
           "is not the paper's, so compare rows and trends, not values.", "",
           "## Scale", "", *scale_lines(preset, results), ""]
    missing = missing_runs(results, paper)
    if missing:
        out += [f"**Missing runs** ({len(missing)}): " + ", ".join(f"`{m}`" for m in missing)
                + ". Their cells read `missing`; claims that need them are inconclusive.", ""]
    judged = judge_all(CLAIMS, results, paper)
    out += ["## Claims of the paper", "", claims_markdown(CLAIMS, results, paper, judged), "",
            "### Where the miniature differs from the paper", "",
            differences_markdown(CLAIMS, results, paper, judged), ""]
    paper_t2i = load_paper_t2i()
    for table, title in T2I_TITLES.items():
        out += [f"## {title}", "", t2i_markdown(results, paper_t2i, table), ""]
        if table == "2":
            out += [t2i_speed_line(results), ""]
        for caption, rel in figures:
            if caption.startswith(f"Table {table}"):
                out += _figure(folder, caption, rel)
    for table, title in TABLE_TITLES.items():
        out += [f"## {title}", "", table_markdown(compare_table(results, paper, table)), ""]
        for caption, rel in figures:
            if caption.startswith(f"Table {table}") or (table == "F" and caption.startswith("Fidelity")):
                out += _figure(folder, caption, rel)
    out += ["## Consistency and saturation", "",
            "`consistency_rmse`: pixel RMSE between the NFE-k and NFE-1 samples of the same "
            "noise (lower = more consistent); `std_ratio`: pixel std of samples / of the data "
            "(> 1 = over-contrast, the paper's oversaturation).", ""]
    for metric in ("consistency_rmse", "std_ratio", "clip_fraction"):
        df = metric_by_method(results, metric, METHOD_RUNS)
        std = metric_by_method(results, metric, METHOD_RUNS, stat="std")
        out += [f"**{metric}** per NFE", "", _frame_markdown(df, std), ""]
    rest = [f for f in figures if not f[0].startswith(("Table", "Fidelity"))]
    if rest:
        out += ["## Figures", ""]
        for caption, rel in rest:
            out += _figure(folder, caption, rel)
    times = wall_times(results)
    out += ["## Runs", "", "| run | notebook | config | wall time (s) | git |", "|---|---|---|---|---|"]
    for r in times.itertuples():
        alias = " (alias)" if r.alias else ""
        out.append(f"| `{r.run}` | {r.notebook} | {r.config_hash}{alias} | "
                   f"{r.wall_time_s:.0f} | {r.git_sha} |")
    return "\n".join(out) + "\n"


METHOD_RUNS: tuple[tuple[str, str, str], ...] = (
    ("teacher", "01_teacher", "teacher"), ("rectified", "table3_rectified", "rectified"),
    ("rectified+distill", "table3_rectified", "rectified+distill"), ("CD", "table4_cd", "cd"),
    ("+GAN", "table4_gan", "cd+trunc+gan"), ("+RF", "table4_rf", "cd+trunc+gan+rf"),
    ("+BI (SCFlow)", "table4_bi", "scflow"),
    ("SCFlow, code switches", "table4_bi_fidelity_code", "scflow"),
)
"""(label, run, method) of every method shown in the consistency / saturation section."""


def _frame_markdown(df: pd.DataFrame, std: pd.DataFrame | None = None) -> str:
    """Labels x NFE as Markdown; cells ``mean ± std`` where ``std`` has a number."""
    if df.empty:
        return f"({MISSING}: no run has these numbers yet)"
    cols = list(df.columns)
    lines = ["| method | " + " | ".join(f"NFE {c}" for c in cols) + " |",
             "|" + "---|" * (len(cols) + 1)]
    for label, row in df.iterrows():
        sd = [std.at[label, c] if std is not None and c in std.columns else math.nan
              for c in cols]
        lines.append(f"| {label} | " + " | ".join(_mean_pm(row[c], s)
                                                  for c, s in zip(cols, sd, strict=True)) + " |")
    return "\n".join(lines)


def _figure(folder: Path, caption: str, rel: str) -> list[str]:
    if (folder / rel).exists():
        return [f"![{caption}]({rel})", "", f"*{caption}*", ""]
    return [f"*{caption}: {MISSING} ({rel})*", ""]


def write_report(preset: str, folder: str | Path | None = None,
                 figures: Sequence[tuple[str, str]] = ()) -> Path:
    """Write ``REPORT.md`` into the results folder atomically; return its path."""
    from scflow.cache import atomic_write_bytes

    folder = Path(folder) if folder is not None else results_dir(preset)
    path = folder / "REPORT.md"
    atomic_write_bytes(path, build_report(preset, folder, figures).encode())
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scflow.repro.report --preset mini``: rewrite REPORT.md from the existing CSVs."""
    ap = argparse.ArgumentParser(prog="python -m scflow.repro.report", description=main.__doc__)
    ap.add_argument("--preset", default="mini")
    args = ap.parse_args(argv)
    from scflow.repro.report_figures import report_figures

    print("wrote", write_report(args.preset, figures=report_figures(args.preset)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
