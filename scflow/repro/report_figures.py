"""The report's figures: FID vs NFE per table, consistency / saturation, Figs. 1, 5, 6, 7.

Figures 1, 5 and 6 are drawn from the samples files the notebooks wrote
(``results/<preset>/samples/<run>.npz``, :mod:`scflow.repro.samples`) as one grid each: rows =
methods, columns = NFE (no re-sampling: seconds, not minutes); a run without its file becomes
a row saying "missing: <run>". Fig. 7 (a trajectory) is notebook 05's own figure. Every
function returns a matplotlib Figure; :func:`make_report_figures` renders and saves them all as
``figures/report_*.png``. Colours: one per method, :mod:`scflow.repro.colors`.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import NullLocator

from scflow.cache import atomic_write_bytes
from scflow.repro.colors import PAPER_STYLE, REFERENCE_STYLE, series_colors
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


LOG_SPAN = 20.0
"""A panel whose values span more than this factor gets a log axis (Tables 3 and 5: the
teacher's one-step FID and a diverged row would squash every other row on a linear one)."""


def _nfe_axis(ax: plt.Axes, nfes: list[int]) -> None:
    """NFE on a log2 axis, ticked at the NFEs drawn, written as plain numbers."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(nfes, [str(n) for n in nfes])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("NFE")


def _value_axis(ax: plt.Axes, values: list[float], label: str) -> None:
    """A log axis where the values span more than :data:`LOG_SPAN`, else a linear one."""
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > LOG_SPAN:
        ax.set_yscale("log")
        label += " (log scale)"
    ax.set_ylabel(label)


def _legend(fig: plt.Figure, axes: list[plt.Axes], order: list[str]) -> None:
    """One legend for the figure, right of the panels, each series once, in ``order`` (the
    order they were drawn in; matplotlib would put error-bar series last)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    labels = [x for x in order if x in seen] + [x for x in seen if x not in order]
    if labels:
        fig.legend([seen[x] for x in labels], labels, loc="center left", fontsize=9,
                   bbox_to_anchor=(1.0, 0.5), frameon=False)


def _row_groups(cmp: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Rows with the same numbers, ours and the paper's, at every NFE (Table 6's default row
    under three names: one configuration, run once) as one group labelled with every name."""
    groups: dict[tuple, list[str]] = {}
    for row, grp in cmp.groupby("row", sort=False):
        key = tuple((int(n), *(None if pd.isna(v) else float(v) for v in vals))
                    for n, *vals in zip(grp.nfe, grp.ours, grp.paper, strict=True))
        groups.setdefault(key, []).append(str(row))
    return [(" = ".join(names), cmp[cmp.row == names[0]]) for names in groups.values()]


def table_figure(cmp: pd.DataFrame, title: str,
                 variant_runs: Collection[str] = ()) -> plt.Figure:
    """FID vs NFE for one table: ours (left) beside the paper's (right, dashed), one colour per
    row (:mod:`scflow.repro.colors`; rows whose run is in ``variant_runs`` vary a method's
    settings), one legend; without any paper number, ours alone.

    Where a row of ours has two or more units (``ours_se`` of
    :func:`scflow.repro.tables.compare_table`: seeds, or draws of one seed), the line is the
    mean and the bars its standard error, the one the claims use.
    """
    groups = _row_groups(cmp)
    colors = series_colors([(str(g.method.iloc[0]) if "method" in g else name,
                             "run" in g and str(g.run.iloc[0]) in variant_runs)
                            for name, g in groups])
    panels = [("ours", "ours (miniature)")]
    if cmp.paper.notna().any():
        panels.append(("paper", "paper (CelebA-HQ 256, Inception FID)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
    for ax, (col, name) in zip(axes[0], panels, strict=True):
        values: list[float] = []
        for (label, g), color in zip(groups, colors, strict=True):
            g = g.dropna(subset=[col])
            if not len(g):
                continue
            values += list(g[col])
            se = g["ours_se"] if col == "ours" and "ours_se" in g else None
            style = dict(PAPER_STYLE) if col == "paper" else {"marker": "o"}
            if se is not None and se.notna().any():
                ax.errorbar(g.nfe, g[col], yerr=se.fillna(0.0), capsize=3, color=color,
                            label=label, **style)
            else:
                ax.plot(g.nfe, g[col], color=color, label=label, **style)
        over = ([w for w in dict.fromkeys(cmp.over) if w and w != "one value"]
                if col == "ours" and "over" in cmp else [])
        ax.set_title(name + (f"\nbars: SE over {', '.join(over)} (lines: the mean)"
                             if over else ""), fontsize=10)
        _nfe_axis(ax, sorted({int(n) for n in cmp.dropna(subset=[col]).nfe}) or [1])
        _value_axis(ax, values, "FID")
        if not values:
            ax.text(0.5, 0.5, "no run done yet", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _legend(fig, list(axes[0]), [label for label, _ in groups])
    return fig


def method_metric_figure(df: pd.DataFrame, metric: str, se: pd.DataFrame | None = None,
                         colors: Mapping[str, str] | None = None) -> plt.Figure:
    """``metric`` vs NFE, one line per method (rows of
    :func:`scflow.repro.tables.metric_by_method`) in ``colors[label]``; ``se`` (same shape,
    ``stat="se"``) adds error bars where a method has two or more units. ``std_ratio`` gets
    its reference line at 1.0 (the data's contrast); ``consistency_rmse`` starts at 0 (NFE 1
    itself)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    colors = colors or {}
    nfes: set[int] = set()
    for label, row in df.iterrows():
        row = row.dropna()
        if not len(row):
            continue
        x = [int(c) for c in row.index]
        nfes |= set(x)
        sd = (se.loc[label].reindex(row.index) if se is not None and label in se.index
              else None)
        kw = {"marker": "o", "label": label, "color": colors.get(str(label))}
        if sd is not None and sd.notna().any():
            ax.errorbar(x, row.values, yerr=sd.fillna(0.0).values, capsize=3, **kw)
        else:
            ax.plot(x, row.values, **kw)
    if metric == "std_ratio":
        ax.axhline(1.0, label="the data (1.0)", **REFERENCE_STYLE)
    if metric == "consistency_rmse":
        ax.set_ylim(bottom=0)
    _nfe_axis(ax, sorted(nfes) or [1])
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per method", fontsize=10)
    fig.tight_layout()
    _legend(fig, [ax], [str(label) for label in df.index])
    return fig


def variant_runs(results: pd.DataFrame) -> set[str]:
    """Runs that vary a method's settings: not the method's own run of :data:`METHOD_RUNS`
    (e.g. ``table4_bi`` for ``scflow``) nor an alias of it (the same configuration hash)."""
    hashes = dict(zip(results.run, results.config_hash, strict=True)) if len(results) else {}
    own: dict[str, str] = {}
    for _, run, method in METHOD_RUNS:
        own.setdefault(method, run)
    out = set()
    for run, method in zip(results.run, results.method, strict=True):
        base = own.get(str(method))
        if base is not None and run != base and (hashes.get(run) is None
                                                 or hashes.get(run) != hashes.get(base)):
            out.add(str(run))
    return out


def method_colors(results: pd.DataFrame) -> dict[str, str]:
    """Label -> colour of every method of :data:`METHOD_RUNS` (the metric figures')."""
    variants = variant_runs(results)
    labels = [(label, run, method) for label, run, method in METHOD_RUNS]
    colors = series_colors([(method, run in variants) for _, run, method in labels])
    return {label: c for (label, _, _), c in zip(labels, colors, strict=True)}


def make_report_figures(folder: str | Path, show: bool = False) -> list[tuple[str, str]]:
    """Render every report figure into ``<folder>/figures/report_*.png``; a ``report_*.png``
    there that this call did not render (a figure the report no longer has) is removed.

    Returns (caption, path relative to ``folder``) pairs for :func:`scflow.repro.report.write_report`.
    """
    folder = Path(folder)
    results, paper = load_results(folder), load_paper_numbers()
    out: list[tuple[str, str]] = []
    variants = variant_runs(results)

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
        save(table_figure(cmp, title, variants), f"report_table{table}_fid", caption)
    colors = method_colors(results)
    for metric in ("consistency_rmse", "std_ratio"):
        df = metric_by_method(results, metric, METHOD_RUNS)
        se = metric_by_method(results, metric, METHOD_RUNS, stat="se")
        save(method_metric_figure(df, metric, se, colors), f"report_{metric}",
             f"{metric} vs NFE per method")
    for name, spec in PAPER_FIGURES.items():
        save(sample_figure(folder, spec), f"report_{name}", spec.title)
    if (folder / "figures" / "table4_bi_fig7_trajectory.png").exists():  # notebook 05's, as is
        out.append(("Fig. 7: four-step trajectory of SCFlow and its z0 sequence",
                    "figures/table4_bi_fig7_trajectory.png"))
    t2i = load_samples(folder, T2I_RUN)
    if t2i is not None:
        save(prompt_grid(t2i, T2I_SAMPLES_TITLE), "report_t2i_samples", T2I_SAMPLES_TITLE)
    rendered = {Path(rel).name for _, rel in out}
    for stale in (folder / "figures").glob("report_*.png"):
        if stale.name not in rendered:
            stale.unlink()
    return out


def report_figures(preset: str) -> list[tuple[str, str]]:
    """:func:`make_report_figures` for ``results/<preset>/``."""
    return make_report_figures(results_dir(preset))
