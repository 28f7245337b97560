"""Aggregation: results CSVs -> the paper's Tables 1-6 with the paper's numbers beside ours.

``python -m scflow.repro.report --preset mini`` (or notebook ``07_tables_and_figures``) reads every
``results/<preset>/*.csv``, matches each row of the paper's tables (data file
``scflow/repro/data/paper_numbers.csv``: table, row, the run and method reproducing it, the paper's
FID per NFE) to our numbers, and judges each claim of the paper by the explicit rules of
:mod:`scflow.repro.claims`. A run that has not been done shows as ``missing``; nothing crashes on a
partial grid. :func:`write_report` writes ``results/<preset>/REPORT.md``.

The numbers themselves (the paper's and ours, seed replicas, comparison tables) come from
:mod:`scflow.repro.tables`, their Markdown from :mod:`scflow.repro.markdown_tables`, the words
about the claims from :mod:`scflow.repro.claims_text`. ``main`` also refreshes the generated
sections of README.md and docs/*.md (:mod:`scflow.repro.generated`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scflow.cache import atomic_write_bytes
from scflow.nets import build_velocity_net, count_parameters
from scflow.repro.claims import CLAIMS, judge_all
from scflow.repro.claims_text import claims_markdown, summary_markdown
from scflow.repro.csvfile import CsvFileError
from scflow.repro.generated import GeneratedSectionError, refresh_files, stale_sections
from scflow.repro.markdown_tables import (
    T2I_TITLES,
    frame_markdown,
    seeds_cell,
    t2i_markdown,
    t2i_speed_line,
    table_markdown,
)
from scflow.repro.noise_table import noise_markdown
from scflow.repro.presets import preset_values
from scflow.repro.report_figures import report_figures
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
    wall_times,
)
from scflow.repro.teacher_ref import TEACHER_ROW, converged_cell, teacher_line
from scflow.repro.timings import timings_markdown


def scale_lines(preset: str, results: pd.DataFrame) -> list[str]:
    """The preset's scale beside the paper's, for the report's first section."""
    p = preset_values(preset)
    n_samples = sorted({int(x) for x in pd.to_numeric(
        results[results.metric == "fid"].n_samples, errors="coerce").dropna()})
    backends = sorted({str(b) for b in results.feature_backend.dropna()})
    data = p["dataset"] + (f" ({p['data_dir']})" if p["dataset"] == "folder" else "")
    limit = f", at most {p['data_limit']} images" if p["data_limit"] else ""
    results = results[results.notebook != STUDY_NOTEBOOK]  # the study has its own seed
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
        f"| seeds | {seeds_cell(results, p['seed'])} | one (not stated) |",
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
    """REPORT.md's text for the CSVs of ``folder`` (default ``results/<preset>/``), top-down: the
    summary of the claims, the scale, every claim's rule, the tables, the figures, the times.

    ``figures``: (caption, path relative to the folder) pairs to embed, e.g. the PNGs that
    notebook 07 saves; missing files are listed as missing.
    """
    folder = Path(folder) if folder is not None else results_dir(preset)
    results = load_results(folder)
    paper = load_paper_numbers()
    judged = judge_all(CLAIMS, results, paper)
    out = [f"<!-- generated: do not edit. Regenerate with {regenerate_command(preset)} -->",
           f"# SCFlow in miniature: results of preset `{preset}`", "",
           f"Generated from `results/{preset}/*.csv` by `scflow/repro/report.py`. Regenerate: "
           f"{regenerate_command(preset)}.", "", "## Summary", "", summary_markdown(judged),
           "FID here is computed on the preset's features and sample count: its absolute scale "
           "is not the paper's, so compare rows and trends, not values.", ""]
    if results.attrs.get("modified"):
        out += ["**Built from modified CSVs** (their digests do not match their rows: not what "
                "their runs computed): " + ", ".join(f"`{m}`" for m in results.attrs["modified"])
                + ".", ""]
    missing = missing_runs(results, paper)
    if missing:
        out += [f"**Missing runs** ({len(missing)}): " + ", ".join(f"`{m}`" for m in missing)
                + ". Their cells read `missing`; claims that need them are inconclusive.", ""]
    out += ["## Scale", "", *scale_lines(preset, results), "",
            "## Noise: what the instrument can resolve", "", noise_markdown(results, paper), "",
            "## Claims of the paper, rule by rule", "", claims_markdown(judged), ""]
    paper_t2i = load_paper_t2i()
    for table, title in T2I_TITLES.items():
        out += [f"## {title}", "", t2i_markdown(results, paper_t2i, table), ""]
        if table == "2":
            out += [t2i_speed_line(results), ""]
        for caption, rel in figures:
            if caption.startswith(f"Table {table}"):
                out += _figure(folder, caption, rel)
    for table, title in TABLE_TITLES.items():
        extra = (("converged: ours / paper", {TEACHER_ROW: converged_cell(results)})
                 if table == "3" else None)
        out += [f"## {title}", "", table_markdown(compare_table(results, paper, table), extra),
                ""]
        if table == "3":
            out += [teacher_line(results, paper), ""]
        for caption, rel in figures:
            if caption.startswith(f"Table {table}") or (table == "F" and caption.startswith("Fidelity")):
                out += _figure(folder, caption, rel)
    out += ["## Consistency and saturation", "",
            "`consistency_rmse`: pixel RMSE between the NFE-k and NFE-1 samples of the same "
            "noise (lower = more consistent); `std_ratio`: pixel std of samples / of the data "
            "(> 1 = over-contrast, the paper's oversaturation).", ""]
    for metric in ("consistency_rmse", "std_ratio", "clip_fraction"):
        df = metric_by_method(results, metric, METHOD_RUNS)
        se = metric_by_method(results, metric, METHOD_RUNS, stat="se")
        over = metric_by_method(results, metric, METHOD_RUNS, stat="over")
        out += [f"**{metric}** per NFE", "", frame_markdown(df, se, over), ""]
    rest = [f for f in figures if not f[0].startswith(("Table", "Fidelity"))]
    if rest:
        out += ["## Figures", ""]
        for caption, rel in rest:
            out += _figure(folder, caption, rel)
    out += ["## Timings", "", timings_markdown(results), "", "## Runs", "",
            "| run | notebook | config | wall time (s) | git |", "|---|---|---|---|---|"]
    for r in wall_times(results).itertuples():
        alias = " (alias)" if r.alias else ""
        out.append(f"| `{r.run}` | {r.notebook} | {r.config_hash}{alias} | "
                   f"{r.wall_time_s:.0f} | {r.git_sha} |")
    return "\n".join(out) + "\n"


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
    """``python -m scflow.repro.report --preset mini``: rewrite REPORT.md, its figures and the
    generated sections of README.md and docs/*.md from the existing CSVs; ``--check`` only says
    which generated sections differ from what the CSVs give (exit 1 if any)."""
    ap = argparse.ArgumentParser(prog="python -m scflow.repro.report", description=main.__doc__)
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if a generated section is out of date")
    ap.add_argument("--allow-modified", action="store_true",
                    help="build from results CSVs modified after their run (REPORT.md says so) "
                         "instead of refusing them")
    args = ap.parse_args(argv)
    try:
        if args.check:
            stale = stale_sections()
            for name in stale:
                print(f"out of date: {name} (run python -m scflow.repro.report --preset "
                      f"{name.split(': ')[1].split('/')[0]})", file=sys.stderr)
            return 1 if stale else 0
        if args.allow_modified:  # REPORT.md says so; the README's sections stay the committed ones
            with allowing_modified():
                print("wrote", write_report(args.preset, figures=report_figures(args.preset)))
            print("generated sections of README.md and docs/ not refreshed (--allow-modified)")
            return 0
        print("wrote", write_report(args.preset, figures=report_figures(args.preset)))
        for path in refresh_files(args.preset):
            print("refreshed", path)
    except GeneratedSectionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except CsvFileError as err:
        print(f"report not built:\n{err}\n(or build it from them anyway: --allow-modified)",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
