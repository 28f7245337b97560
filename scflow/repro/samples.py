"""Sample files: the few images per NFE a run already drew, kept so the report can redraw them.

A notebook evaluates every NFE from one fixed noise (Figs. 1, 5, 6: "same noise per column");
it keeps the first ``n_show`` decoded samples of each (method, NFE) as uint8 in
``results/<preset>/samples/<run>.npz`` (``interactive/`` outside the runner, like the CSVs),
written atomically when the figures are made. :mod:`scflow.repro.report_figures` then draws
the report's figures as one grid each from these tensors instead of pasting PNGs together.
Nothing is re-sampled: saving consumes no random numbers, so the evaluation's numbers are
unchanged. A file holds, per row ``r``: ``images[r]`` (n, H, W, C) uint8, ``method[r]``,
``nfe[r]``; and per column ``prompts`` (text-to-image; empty otherwise).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scflow.cache import atomic_write_bytes
from scflow.repro.results import output_dir

SAMPLE_KEYS = ("run", "images", "method", "nfe", "prompts")
"""The arrays of a samples file."""


def to_uint8(images: Tensor) -> np.ndarray:
    """(n, C, H, W) in [-1, 1] -> (n, H, W, C) uint8 in [0, 255] (the range the figures show)."""
    if images.ndim != 4:
        raise ValueError(f"expected (n, C, H, W) images, got shape {tuple(images.shape)}")
    x = (images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@dataclass(frozen=True)
class Samples:
    """The first samples of every (method, NFE) row of one run, from the same noise per column."""

    run: str
    images: np.ndarray
    """(rows, n, H, W, C) uint8."""
    method: tuple[str, ...]
    """Method label per row (the CSV's ``method``)."""
    nfe: tuple[int, ...]
    """Euler steps per row."""
    prompts: tuple[str, ...] = ()
    """The prompt of each column (text-to-image), else empty."""

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 5:
            raise ValueError(f"images must be (rows, n, H, W, C) uint8, got "
                             f"{self.images.dtype} {self.images.shape}")
        if not len(self.method) == len(self.nfe) == self.images.shape[0]:
            raise ValueError(f"{self.images.shape[0]} image rows but {len(self.method)} methods "
                             f"and {len(self.nfe)} NFEs")
        if self.prompts and len(self.prompts) != self.images.shape[1]:
            raise ValueError(f"{len(self.prompts)} prompts for {self.images.shape[1]} columns")

    @classmethod
    def from_tensors(cls, run: str, rows: Sequence[tuple[str, int, Tensor]], n: int,
                     prompts: Sequence[str] = ()) -> Samples:
        """Keep the first ``n`` images of each ``(method, nfe, images)`` row (same noise order)."""
        if not rows:
            raise ValueError("no sample rows to keep")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        n = min([n] + [int(x.shape[0]) for _, _, x in rows])
        return cls(run, np.stack([to_uint8(x[:n]) for _, _, x in rows]),
                   tuple(str(m) for m, _, _ in rows), tuple(int(k) for _, k, _ in rows),
                   tuple(str(p) for p in prompts[:n]) if prompts else ())

    def get(self, nfe: int, method: str | None = None) -> np.ndarray | None:
        """The (n, H, W, C) samples at ``nfe`` (of ``method`` if the file holds several)."""
        for i, (m, k) in enumerate(zip(self.method, self.nfe, strict=True)):
            if k == nfe and (method is None or m == method):
                return self.images[i]
        return None

    def to_bytes(self) -> bytes:
        """The compressed ``.npz`` content (plain arrays only: loads without pickle)."""
        buf = io.BytesIO()
        np.savez_compressed(buf, run=np.array(self.run), images=self.images,
                            method=np.array(self.method, dtype=str),
                            nfe=np.array(self.nfe, dtype=np.int64),
                            prompts=np.array(self.prompts, dtype=str))
        return buf.getvalue()

    @classmethod
    def load(cls, path: str | Path) -> Samples:
        """Read a file written by :func:`save_samples`."""
        with np.load(path, allow_pickle=False) as f:
            missing = set(SAMPLE_KEYS) - set(f.files)
            if missing:
                raise ValueError(f"{path}: not a samples file (missing {sorted(missing)})")
            return cls(str(f["run"]), f["images"], tuple(str(m) for m in f["method"]),
                       tuple(int(k) for k in f["nfe"]), tuple(str(p) for p in f["prompts"]))


def samples_path(folder: str | Path, run: str) -> Path:
    """``<folder>/samples/<run>.npz`` (``folder`` = ``results/<preset>``)."""
    return Path(folder) / "samples" / f"{run}.npz"


def save_samples(samples: Samples, preset: str) -> Path:
    """Write ``samples`` atomically to ``results/<preset>/samples/<run>.npz`` (or ``interactive/``)."""
    path = samples_path(output_dir(preset), samples.run)
    atomic_write_bytes(path, samples.to_bytes())
    return path


def load_samples(folder: str | Path, run: str) -> Samples | None:
    """The samples file of ``run`` under ``folder``, or ``None`` when the run has not written one."""
    path = samples_path(folder, run)
    return Samples.load(path) if path.exists() else None
