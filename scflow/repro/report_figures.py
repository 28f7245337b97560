"""The report's figures: FID vs NFE per table, consistency / saturation, Figs. 1, 5, 6, 7.

Figures 1, 5, 6 and 7 are assembled from the PNGs the notebooks already saved under
``results/<preset>/figures/`` (no re-sampling: seconds, not minutes); a PNG that is not there
becomes a panel saying "missing". Every function returns a matplotlib Figure;
:func:`make_report_figures` renders and saves them all as ``figures/report_*.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from scflow.cache import atomic_write_bytes
from scflow.repro.results import results_dir
from scflow.repro.tables import (
    METHOD_RUNS,
    TABLE_TITLES,
    compare_table,
    load_paper_numbers,
    load_results,
    metric_by_method,
)

# Figure -> (title, [(panel label, PNG stem under figures/)]); stems are <run>_<figure name>
# as saved by notebooks 01-06.
PAPER_FIGURES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "fig1": ("Fig. 1: one-step and few-step samples, SCFlow vs rectified flow", [
        ("SCFlow (ours): 1-NFE / 4-NFE", "table4_bi_fig6_row"),
        ("rectified flow + distill: 1-NFE / 4-NFE", "table3_rectified_fig1_row")]),
    "fig5": ("Fig. 5: SCFlow at NFE 1 ... 16 (teacher for reference)", [
        ("SCFlow (ours)", "table4_bi_samples_vs_nfe"),
        ("teacher (Euler)", "01_teacher_samples_vs_nfe")]),
    "fig6": ("Fig. 6: 1-NFE vs 4-NFE as the loss terms are added", [
        ("CD", "table4_cd_fig6_row"), ("+ truncation + GAN", "table4_gan_fig6_row"),
        ("+ RF", "table4_rf_fig6_row"), ("+ BI (SCFlow)", "table4_bi_fig6_row")]),
    "fig7": ("Fig. 7: four-step trajectory of SCFlow and its z0 sequence", [
        ("SCFlow, 4 Euler steps", "table4_bi_fig7_trajectory")]),
}


def stack_pngs(panels: Sequence[tuple[str, Path]], title: str, width: float = 7.0) -> plt.Figure:
    """Stack saved PNGs vertically, one labelled panel each; a missing file says so."""
    imgs = [plt.imread(p) if Path(p).exists() else None for _, p in panels]
    heights = [(im.shape[0] / im.shape[1]) if im is not None else 0.15 for im in imgs]
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(width, width * sum(heights) + 0.5 * len(panels) + 0.3),
                             gridspec_kw={"height_ratios": [max(h, 0.15) for h in heights]})
    for ax, (label, path), im in zip(axes[:, 0], panels, imgs, strict=True):
        ax.set_xticks([]), ax.set_yticks([])
        if im is None:
            ax.text(0.5, 0.5, f"missing: {Path(path).name}", ha="center", va="center")
        else:
            ax.imshow(im)
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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
        import io

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
    for name, (title, panels) in PAPER_FIGURES.items():
        paths = [(label, folder / "figures" / f"{stem}.png") for label, stem in panels]
        save(stack_pngs(paths, title), f"report_{name}", title)
    if (folder / "figures" / "t2i_samples.png").exists():  # notebook 08's grid, shown as is
        out.append(("Table 1 (text-to-image): samples per prompt at NFE 1 / 2 / 25",
                    "figures/t2i_samples.png"))
    return out


def report_figures(preset: str) -> list[tuple[str, str]]:
    """:func:`make_report_figures` for ``results/<preset>/``."""
    return make_report_figures(results_dir(preset))
