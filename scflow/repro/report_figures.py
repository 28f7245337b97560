"""The report's figures: FID vs NFE per table, consistency / saturation, Figs. 1, 5, 6, 7.

Figures 1, 5 and 6 are drawn from the samples files the notebooks wrote
(``results/<preset>/samples/<run>.npz``, :mod:`scflow.repro.samples`) as one grid each: rows =
methods, columns = NFE (no re-sampling: seconds, not minutes); a run without its file becomes
a row saying "missing: <run>". Fig. 7 (a trajectory) and the text-to-image samples are the
notebooks' own figures. Every function returns a matplotlib Figure;
:func:`make_report_figures` renders and saves them all as ``figures/report_*.png``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from scflow.cache import atomic_write_bytes
from scflow.repro.results import results_dir
from scflow.repro.sample_figures import GridRow, nfe_grid, prompt_grid
from scflow.repro.samples import load_samples
from scflow.repro.tables import (
    METHOD_RUNS,
    TABLE_TITLES,
    compare_table,
    load_paper_numbers,
    load_results,
    metric_by_method,
)


@dataclass(frozen=True)
class SampleFigure:
    """One of the paper's sample figures: its title, its rows and its NFE columns."""

    title: str
    rows: tuple[tuple[str, str, str | None], ...]
    """(row label, run, method within the run's file or ``None`` for its only one)."""
    nfes: tuple[int, ...]
    diff: bool = False
    """Add each method's difference to its 1-NFE sample (drift / contrast at high NFE)."""


PAPER_FIGURES: dict[str, SampleFigure] = {
    "fig1": SampleFigure("Fig. 1: one-step and few-step samples, SCFlow vs rectified flow", (
        ("SCFlow (ours)", "table4_bi", None),
        ("rectified flow\n+ distill", "table3_rectified", "rectified+distill")), (1, 2, 4)),
    "fig5": SampleFigure("Fig. 5: SCFlow at NFE 1 ... 16, the teacher for reference", (
        ("SCFlow (ours)", "table4_bi", None), ("teacher (Euler)", "01_teacher", None)),
        (1, 2, 4, 8, 16)),
    "fig6": SampleFigure("Fig. 6: the same noise at every NFE as the loss terms are added", (
        ("CD", "table4_cd", None), ("+ trunc. + GAN", "table4_gan", None),
        ("+ RF", "table4_rf", None), ("+ BI (SCFlow)", "table4_bi", None)),
        (1, 2, 4, 8, 16), diff=True),
}
"""Figure -> its runs; the runs are those of notebooks 01-06 (``papermill_runs/<run>.yaml``)."""

T2I_SAMPLES_TITLE = ("Table 1 (text-to-image) in miniature: our students' samples per prompt, "
                     "the same noise per column")

T2I_RUN = "t2i"
"""Notebook 08's run; its samples file holds one row per (method, NFE) and the prompts."""


def sample_figure(folder: str | Path, spec: SampleFigure, n: int = 4) -> plt.Figure:
    """Draw ``spec`` from the samples files under ``folder`` (missing files say so)."""
    rows = [GridRow(label, run, load_samples(folder, run), method)
            for label, run, method in spec.rows]
    return nfe_grid(rows, spec.nfes, spec.title, n=n, diff=spec.diff)


def table_figure(cmp: pd.DataFrame, title: str) -> plt.Figure:
    """FID vs NFE for one table: ours (left) beside the paper's (right), one line per row.

    Where a row of ours has two or more seeds (``ours_std`` of :func:`scflow.repro.report.
    compare_table`), the line is the mean and the error bars the seeds' std.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, col, name in ((axes[0], "ours", "ours (miniature)"), (axes[1], "paper", "paper")):
        # rows with the same numbers at every NFE (Table 6's default row under three names: one
        # configuration, run once) are drawn once, labelled with every name
        same: dict[tuple, list[str]] = {}
        for row, grp in cmp.groupby("row", sort=False):
            g = grp.dropna(subset=[col])
            if len(g):
                same.setdefault(tuple(zip(g.nfe, g[col], strict=True)), []).append(str(row))
        for names in same.values():
            row = " = ".join(names)
            g = cmp[cmp.row == names[0]].dropna(subset=[col])
            std = g["ours_std"] if col == "ours" and "ours_std" in g else None
            if std is not None and std.notna().any():
                label = f"{row} (mean ± std, {int(g.n_seeds.max())} seeds)"
                ax.errorbar(g.nfe, g[col], yerr=std.fillna(0.0), marker="o", capsize=3,
                            label=label)
            else:
                ax.plot(g.nfe, g[col], marker="o", label=str(row))
        ax.set_xscale("log", base=2)
        ax.set(xlabel="NFE", ylabel="FID", title=name)
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no numbers", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def method_metric_figure(df: pd.DataFrame, metric: str,
                         std: pd.DataFrame | None = None) -> plt.Figure:
    """``metric`` vs NFE, one line per method (rows of :func:`scflow.repro.report.metric_by_method`);
    ``std`` (same shape, ``stat="std"``) adds error bars where a method has two or more seeds."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for label, row in df.iterrows():
        row = row.dropna()
        if not len(row):
            continue
        sd = (std.loc[label].reindex(row.index) if std is not None and label in std.index
              else None)
        if sd is not None and sd.notna().any():
            ax.errorbar([int(c) for c in row.index], row.values, yerr=sd.fillna(0.0).values,
                        marker="o", capsize=3, label=label)
        else:
            ax.plot([int(c) for c in row.index], row.values, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="NFE", ylabel=metric, title=f"{metric} per method")
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def make_report_figures(folder: str | Path, show: bool = False) -> list[tuple[str, str]]:
    """Render every report figure into ``<folder>/figures/report_*.png``.

    Returns (caption, path relative to ``folder``) pairs for :func:`scflow.repro.report.write_report`.
    """
    folder = Path(folder)
    results, paper = load_results(folder), load_paper_numbers()
    out: list[tuple[str, str]] = []

    def save(fig: plt.Figure, name: str, caption: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        atomic_write_bytes(folder / "figures" / f"{name}.png", buf.getvalue())
        if show:
            plt.show()
        plt.close(fig)
        out.append((caption, f"figures/{name}.png"))

    for table, title in TABLE_TITLES.items():
        cmp = compare_table(results, paper, table)
        caption = (f"Table {table}: FID vs NFE" if table != "F"
                   else "Fidelity: FID vs NFE, paper vs code switches")
        save(table_figure(cmp, title), f"report_table{table}_fid", caption)
    for metric in ("consistency_rmse", "std_ratio"):
        df = metric_by_method(results, metric, METHOD_RUNS)
        std = metric_by_method(results, metric, METHOD_RUNS, stat="std")
        save(method_metric_figure(df, metric, std), f"report_{metric}",
             f"{metric} vs NFE per method")
    for name, spec in PAPER_FIGURES.items():
        save(sample_figure(folder, spec), f"report_{name}", spec.title)
    if (folder / "figures" / "table4_bi_fig7_trajectory.png").exists():  # notebook 05's, as is
        out.append(("Fig. 7: four-step trajectory of SCFlow and its z0 sequence",
                    "figures/table4_bi_fig7_trajectory.png"))
    t2i = load_samples(folder, T2I_RUN)
    if t2i is not None:
        save(prompt_grid(t2i, T2I_SAMPLES_TITLE), "report_t2i_samples", T2I_SAMPLES_TITLE)
    return out


def report_figures(preset: str) -> list[tuple[str, str]]:
    """:func:`make_report_figures` for ``results/<preset>/``."""
    return make_report_figures(results_dir(preset))
