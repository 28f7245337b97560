"""Sample grids drawn from samples files (:mod:`scflow.repro.samples`): one matplotlib grid each.

:func:`nfe_grid` is the layout of the paper's Figs. 1, 5 and 6: rows = methods, columns = NFE,
each cell a small mosaic of the first samples, all from the same noise per column, so a reader
compares a method across NFE along a row and the methods down a column. Optionally each method
gets a second row with the signed difference to its 1-NFE sample, which makes a drift of the
content (Fig. 4's f(z_t, t) drift of consistency distillation) or a contrast change at high NFE
(Fig. 6, saturation) visible at a glance; a self-consistent method's difference row stays white.
:func:`prompt_grid` is the text-to-image layout: rows = (method, NFE), columns = prompts.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from scflow.repro.samples import Samples

FONT = 10
"""Label size in points (row labels, NFE headers); the title is 2 pt larger."""

DIFF_RANGE = 0.5
"""Colour range of the difference rows, in image intensity units ([0, 1]); larger is clipped."""


@dataclass(frozen=True)
class GridRow:
    """One method row of :func:`nfe_grid`."""

    label: str
    """Row label on the left, e.g. ``"CD"``."""
    run: str
    """The run whose samples file holds it (named in the "missing" panel)."""
    samples: Samples | None
    """The run's samples, ``None`` when the file is missing."""
    method: str | None = None
    """Which method of the file (a file may hold several, e.g. the rectified-flow baselines)."""


def mosaic(images: np.ndarray, n: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """The first ``n`` of (k, H, W, C) images tiled in a near-square block, ``pad`` pixels apart.

    uint8 images are scaled to [0, 1], float ones kept as they are; the gaps take ``fill``.
    Single-channel images come back (H', W'), colour ones (H', W', C).
    """
    imgs = images[: max(1, n)]
    imgs = imgs / np.float32(255) if imgs.dtype == np.uint8 else imgs.astype(np.float32)
    k, h, w, c = imgs.shape
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    out = np.full(((h + pad) * rows - pad, (w + pad) * cols - pad, c), fill, dtype=np.float32)
    for i in range(k):
        r, q = divmod(i, cols)
        out[r * (h + pad): r * (h + pad) + h, q * (w + pad): q * (w + pad) + w] = imgs[i]
    return out[..., 0] if c == 1 else out


def _blank(ax: plt.Axes) -> None:
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_facecolor("none")  # a "missing" note may run on under the next cells
    for s in ax.spines.values():
        s.set_visible(False)


def nfe_grid(rows: Sequence[GridRow], nfes: Sequence[int], title: str, n: int = 4,
             diff: bool = False, cell: float = 1.35) -> plt.Figure:
    """Rows = methods, columns = NFE, each cell a mosaic of the first ``n`` samples.

    Columns are the ``nfes`` that at least one row has (all of them if none has any). With
    ``diff`` each method gets a second row: sample at NFE k minus the sample at the first
    column's NFE (mean over colour channels; red brighter, blue darker). A row whose file is
    missing reads ``missing: <run>``; an NFE a run did not evaluate reads ``no NFE k``.
    """
    if not rows:
        raise ValueError("nfe_grid needs at least one row")
    have = {k for r in rows if r.samples is not None for k in r.samples.nfe}
    cols = [k for k in nfes if k in have] or list(nfes)
    per = 2 if diff else 1
    fig, axes = plt.subplots(len(rows) * per, len(cols), squeeze=False, layout="constrained",
                             figsize=(cell * len(cols) + 1.8, cell * len(rows) * per + 0.7))
    shown = None
    for i, row in enumerate(rows):
        ax_row = axes[i * per]
        first = row.samples.get(cols[0], row.method) if row.samples is not None else None
        for j, k in enumerate(cols):
            ax = ax_row[j]
            _blank(ax)
            x = row.samples.get(k, row.method) if row.samples is not None else None
            if x is not None:
                ax.imshow(mosaic(x, n), cmap="gray", vmin=0, vmax=1)
            elif row.samples is not None:
                ax.text(0.5, 0.5, f"no NFE {k}", ha="center", va="center", fontsize=FONT - 1,
                        transform=ax.transAxes)
            if diff:
                dax = axes[i * per + 1][j]
                _blank(dax)
                if x is not None and first is not None:
                    d = (x.astype(np.float32) - first.astype(np.float32)).mean(-1) / 255.0
                    shown = dax.imshow(mosaic(d[..., None], n, fill=0.0), cmap="RdBu_r",
                                       vmin=-DIFF_RANGE, vmax=DIFF_RANGE)
        if row.samples is None:
            note = ax_row[0].text(0.02, 0.5, f"missing: {row.run}", ha="left", va="center",
                                  fontsize=FONT, transform=ax_row[0].transAxes, clip_on=False)
            note.set_in_layout(False)  # it may run into the next cells; keep the columns even
        ax_row[0].set_ylabel(row.label, rotation=0, ha="right", va="center", fontsize=FONT)
        if diff:
            axes[i * per + 1][0].set_ylabel(f"{row.label}:\nminus NFE {cols[0]}", rotation=0,
                                            ha="right", va="center", fontsize=FONT - 1)
    for j, k in enumerate(cols):
        axes[0][j].set_title(f"NFE {k}", fontsize=FONT)
    if shown is not None:
        bar = fig.colorbar(shown, ax=axes[1::per, :].ravel().tolist(), shrink=0.6, aspect=30)
        bar.set_label(f"difference to NFE {cols[0]} (clipped at ±{DIFF_RANGE})", fontsize=FONT - 1)
        bar.ax.tick_params(labelsize=FONT - 1)
    fig.suptitle(title, fontsize=FONT + 2)
    return fig


def prompt_grid(samples: Samples, title: str, cell: float = 1.15, wrap: int = 16) -> plt.Figure:
    """Text-to-image samples: rows = (method, NFE), columns = prompts, each labelled on top."""
    n_rows, n_cols = samples.images.shape[:2]
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, layout="constrained",
                             figsize=(cell * n_cols + 1.8, cell * n_rows + 1.3))
    for i, (method, k) in enumerate(zip(samples.method, samples.nfe, strict=True)):
        for j in range(n_cols):
            ax = axes[i][j]
            _blank(ax)
            ax.imshow(mosaic(samples.images[i, j: j + 1], 1), cmap="gray", vmin=0, vmax=1)
        axes[i][0].set_ylabel(f"{method}\nNFE {k}", rotation=0, ha="right", va="center",
                              fontsize=FONT)
    for j in range(n_cols):
        label = samples.prompts[j] if samples.prompts else f"sample {j}"
        axes[0][j].set_title(textwrap.fill(label, wrap), fontsize=FONT - 1)
    fig.suptitle(title, fontsize=FONT + 2)
    return fig
