"""Aggregation: results CSVs -> the paper's Tables 1-6 with the paper's numbers beside ours.

``python -m scflow.repro.report --preset mini`` (or notebook ``07_tables_and_figures``) reads every
``results/<preset>/*.csv``, matches each row of the paper's tables (data file
``scflow/repro/data/paper_numbers.csv``: table, row, the run and method reproducing it, the paper's
FID per NFE) to our numbers, and judges each claim of the paper by the explicit rules of
:mod:`scflow.repro.claims`. A run that has not been done shows as ``missing``; nothing crashes on a
partial grid. :func:`write_report` writes ``results/<preset>/REPORT.md``.

The numbers themselves (the paper's and ours, seed replicas, comparison tables) come from
:mod:`scflow.repro.tables`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scflow.cache import atomic_write_bytes
from scflow.nets import build_velocity_net, count_parameters
from scflow.repro.claims import CLAIMS, claims_markdown, differences_markdown, judge_all
from scflow.repro.csvfile import CsvFileError
from scflow.repro.presets import preset_values
from scflow.repro.report_figures import report_figures
from scflow.repro.report_t2i import (  # noqa: F401 - T2I_ROWS_NOTE: part of this module's API
    T2I_ROWS_NOTE,
    T2I_TITLES,
    _num,
    _paper_num,
    t2i_markdown,
    t2i_speed_line,
)
from scflow.repro.results import results_dir
from scflow.repro.results_read import allowing_modified
from scflow.repro.tables import (
    METHOD_RUNS,
    MISSING,
    STUDY_NOTEBOOK,
    TABLE_TITLES,
    compare_table,
    load_paper_numbers,
    load_paper_t2i,
    load_results,
    metric_by_method,
    missing_runs,
    replica_map,
    wall_times,
)


def _mean_pm(mean: float | None, std: float) -> str:
    """``mean ± std`` when there is a spread (two or more seeds), else the number alone."""
    return _num(mean) if math.isnan(std) else f"{_num(mean)} ± {_num(std, 2)}"


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


def scale_lines(preset: str, results: pd.DataFrame) -> list[str]:
    """The preset's scale beside the paper's, for the report's first section."""
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
        f"| text-to-image | `{p['t2i_arch']}`{_param_count(p['t2i_arch'])} on digit captions: 1-RF {p['t2i_teacher_steps']} "
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


def _param_count(arch: str) -> str:
    """`` (N parameters)`` of a named net config (:data:`scflow.nets.CONFIGS`); empty if unknown.

    Built once at random (no training, no data): the count says how small our nets are
    beside the paper's (e.g. Ours-0.9B).
    """
    try:
        n = count_parameters(build_velocity_net(arch, sample_size=8))
    except (KeyError, ValueError):  # not a named config: the count is informative only
        return ""
    return f" ({n / 1e6:.1f}M parameters)" if n >= 1e5 else f" ({n} parameters)"


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
    if results.attrs.get("modified"):
        out += ["**Built from modified CSVs** (their digests do not match their rows: not what "
                "their runs computed): " + ", ".join(f"`{m}`" for m in results.attrs["modified"])
                + ".", ""]
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
    folder = Path(folder) if folder is not None else results_dir(preset)
    path = folder / "REPORT.md"
    atomic_write_bytes(path, build_report(preset, folder, figures).encode())
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scflow.repro.report --preset mini``: rewrite REPORT.md from the existing CSVs."""
    ap = argparse.ArgumentParser(prog="python -m scflow.repro.report", description=main.__doc__)
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--allow-modified", action="store_true",
                    help="build from results CSVs modified after their run (REPORT.md says so) "
                         "instead of refusing them")
    args = ap.parse_args(argv)
    try:
        with allowing_modified() if args.allow_modified else contextlib.nullcontext():
            print("wrote", write_report(args.preset, figures=report_figures(args.preset)))
    except CsvFileError as err:
        print(f"report not built:\n{err}\n(or build it from them anyway: --allow-modified)",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
