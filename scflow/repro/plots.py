"""Figures: sample grids (Figs. 1, 5, 6), trajectories with their z0 sequence (Figs. 4, 7), curves.

Every function returns a matplotlib Figure; notebooks show it and save it with
:func:`scflow.repro.results.save_figure`. A method's line has its colour of
:mod:`scflow.repro.colors`, as in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from scflow.repro.colors import REFERENCE_STYLE, method_color


def _to_hw(img: Tensor) -> Tensor:
    """(C, H, W) in [-1, 1] -> (H, W) or (H, W, 3) in [0, 1] for imshow."""
    x = ((img.detach().float().cpu().clamp(-1, 1) + 1) / 2)
    return x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)


def image_grid(rows: Sequence[Tensor], row_labels: Sequence[str], title: str = "",
               cell: float = 0.9) -> plt.Figure:
    """One row of images per entry of ``rows`` (each (n, C, H, W)), labelled on the left."""
    n = max(r.shape[0] for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(cell * n + 1.2, cell * len(rows) + 0.4),
                             squeeze=False)
    for i, (imgs, label) in enumerate(zip(rows, row_labels, strict=True)):
        for j in range(n):
            ax = axes[i][j]
            ax.set_xticks([]), ax.set_yticks([])
            if j < imgs.shape[0]:
                ax.imshow(_to_hw(imgs[j]), cmap="gray", vmin=0, vmax=1)
            else:
                ax.axis("off")
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def trajectory_figure(states: Sequence[Tensor], z0s: Sequence[Tensor], times: Sequence[float],
                      title: str = "", cell: float = 0.9) -> plt.Figure:
    """Fig. 4 / Fig. 7 layout for ONE example: top row z_t along the path, bottom row f(z_t, t)."""
    n = len(z0s)
    fig, axes = plt.subplots(2, n + 1, figsize=(cell * (n + 1) + 1.2, cell * 2 + 0.6), squeeze=False)
    for j in range(n + 1):
        for i in range(2):
            axes[i][j].set_xticks([]), axes[i][j].set_yticks([])
        axes[0][j].imshow(_to_hw(states[j]), cmap="gray", vmin=0, vmax=1)
        axes[0][j].set_title(f"t={times[j]:.2f}", fontsize=7)
        if j < n:
            axes[1][j].imshow(_to_hw(z0s[j]), cmap="gray", vmin=0, vmax=1)
        else:
            axes[1][j].axis("off")
    axes[0][0].set_ylabel("z_t", rotation=0, ha="right", fontsize=8)
    axes[1][0].set_ylabel("f(z_t,t)", rotation=0, ha="right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def curve(values: Sequence[float] | Tensor, title: str, xlabel: str = "step", ylabel: str = "loss",
          smooth: int = 50, logy: bool = True) -> plt.Figure:
    """A training curve with a running mean over ``smooth`` points."""
    v = torch.as_tensor(values, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(v.numpy(), alpha=0.3, lw=0.8)
    if len(v) >= smooth > 1:
        sm = torch.nn.functional.avg_pool1d(v.view(1, 1, -1), smooth, stride=1).view(-1)
        ax.plot(range(smooth - 1, len(v)), sm.numpy(), lw=1.5)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    fig.tight_layout()
    return fig


def metric_vs_nfe(table: dict[str, dict[int, float]], metric: str, title: str = "") -> plt.Figure:
    """``table[method][nfe] = value`` as one line per method, NFE on a log2 axis."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for method, series in table.items():
        xs = sorted(series)
        ax.plot(xs, [series[x] for x in xs], marker="o", label=method, color=method_color(method))
    if metric == "std_ratio":
        ax.axhline(1.0, label="the data (1.0)", **REFERENCE_STYLE)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="NFE", ylabel=metric, title=title or f"{metric} vs NFE")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def budget_figure(df: Any, nfes: Sequence[int] = (1, 16)) -> plt.Figure:
    """Training-budget study: FID at each of ``nfes`` and NFE-``max(nfes)`` contrast vs updates.

    ``df`` holds the rows of :func:`scflow.repro.budget.budget_curve` (columns metric, value, method,
    nfe, step, schedule, and draw: values are averaged over the bank's draws); one line per
    (method, schedule).
    """
    panels = [("fid", n) for n in nfes] + [("std_ratio", max(nfes))]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    styles = {s: ("-", "--", ":", "-.")[i % 4] for i, s in enumerate(sorted(set(df.schedule)))}
    for ax, (metric, nfe) in zip(axes[0], panels, strict=True):
        sub = df[(df.metric == metric) & (df.nfe == nfe)]
        sub = sub.groupby(["method", "schedule", "step"], as_index=False).value.mean()
        for (method, schedule), g in sub.groupby(["method", "schedule"]):
            g = g.sort_values("step")
            ax.plot(g.step, g.value, marker="o", label=f"{method}, {schedule}",
                    color=method_color(str(method)), linestyle=styles[schedule])
        steps = sorted(sub.step.unique())
        ax.set_xscale("log")
        ax.set_xticks(steps, [f"{s:g}" for s in steps])  # the evaluated budgets, nothing else
        ax.minorticks_off()
        ax.set_xlabel("updates")
        ax.set_title(f"{metric} at NFE {nfe}")
        if metric == "std_ratio":
            ax.axhline(1.0, label="the data (1.0)", **REFERENCE_STYLE)
    axes[0][0].set_ylabel("value (mean over draws)")
    fig.tight_layout()
    fig.legend(*axes[0][-1].get_legend_handles_labels(), loc="center left", fontsize=9,
               bbox_to_anchor=(1.0, 0.5), frameon=False)  # beside the panels, not over a line
    return fig
