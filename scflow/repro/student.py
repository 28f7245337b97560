"""The sequence notebooks 02-05 share: set-up -> Algorithm 1 -> loss curve -> NFE sweep -> figures -> CSV.

Each of those notebooks trains one student (Algorithm 1 with some terms switched off) and
measures it the same way; only the method, its equation and its own figures differ. Keeping the
common sequence here leaves in every notebook what is particular to it, and makes the four
methods comparable by construction: the same evaluation noise, metrics, figure names and CSV
rows (Table 4, Fig. 6).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from torch import Tensor

from scflow.compile import compile_net
from scflow.evaluate import evaluate_nfe, rows_table
from scflow.repro.configs import distill_config
from scflow.repro.experiment import (
    Setup,
    distill,
    fixed_noise,
    make_extractor,
    prepare,
    upstream_params,
)
from scflow.repro.methods import Method
from scflow.repro.plots import curve, image_grid, metric_vs_nfe, trajectory_figure
from scflow.repro.results import ResultsWriter, save_figure
from scflow.repro.samples import Samples, save_samples

LOSS_TERMS = ("cd", "gan", "rf", "bi")
"""Loss terms of Algorithm 1 a history entry may hold (a term is absent before its warm-up)."""

FIGURE_NFE_MAX = 16
"""The sample grid shows NFE up to 16, the range of Fig. 5 and Table 4."""


def show_source(fn: Callable[..., Any]) -> None:
    """Display the code of a library function in the notebook: the equation is the code."""
    from IPython.display import Markdown, display

    display(Markdown(f"```python\n{inspect.getsource(fn)}```"))


def show(fig: Any, name: str, preset: str) -> Path:
    """Save ``fig`` as ``results/<preset>/figures/<name>.png`` and show it where it was made.

    Under Jupyter's inline backend (interactive, and the runner's kernels) the figure is
    displayed at once and closed, so it appears beside the text that explains it instead of at
    the end of the cell; with any other backend it is only saved. Returns the path.
    """
    import matplotlib

    path = save_figure(fig, name, preset)
    if "inline" in matplotlib.get_backend():
        from IPython.display import display

        display(fig)
        plt.close(fig)
    return path


@dataclass
class StudentRun:
    """What a student notebook keeps after :func:`run_student` for its own figures."""

    P: Any
    """The validated parameters (:class:`scflow.repro.params.RunParams`)."""
    S: Setup
    """Data, latent codec, latents and the cached teacher of the preset."""
    method: str
    """Method label of the CSV rows and figure titles (e.g. ``"cd"``, ``"scflow"``)."""
    distiller: Any
    """The trained :class:`scflow.trainer.Distiller`; sample with ``distiller.eval_ema``."""
    history: list[dict[str, float]]
    """Loss terms per update (Algorithm 1)."""
    z1: Tensor
    """The fixed evaluation noise, the same for every NFE and method."""
    images: dict[int, Tensor]
    """Decoded samples per NFE from ``z1``."""
    rows: list[dict[str, Any]]
    """The metric rows written to the CSV."""
    csv: Path
    """Where the CSV was written."""

    def trajectory(self, nfe: int, name: str, title: str) -> Path:
        """Figs. 4 and 7: an ``nfe``-step Euler trajectory of the first noise and its z0 sequence."""
        import torch

        from scflow.samplers import euler_sample

        traj = euler_sample(self.distiller.eval_ema, self.z1[:1].to(self.S.device), nfe,
                            return_trajectory=True)
        states = self.S.codec.decode(torch.cat(traj.states).float())
        z0s = self.S.codec.decode(torch.cat(traj.z0_estimates).float())
        fig = trajectory_figure(states, z0s, traj.times, title=title)
        return show(fig, f"{self.P.run_name}_{name}", self.P.preset)


def run_student(P: Any, method: Method) -> StudentRun:
    """Distil one student (Algorithm 1) with ``method``'s switches and measure it (Table 4 row).

    In order: the preset's cached autoencoder and teacher (notebook 01), the digits classifier
    for FID, the fixed evaluation noise; Algorithm 1 (resumable, cached when finished) with
    its loss curve; Euler sampling at every NFE of ``P.nfe_list`` from the same noise with FID,
    precision/recall, ``std_ratio`` and consistency; the FID- and std-vs-NFE plots, the sample
    grid over NFE and the Fig. 6 row (NFE 1 vs 4), with the first ``P.n_show`` samples per NFE
    kept in ``samples/<run>.npz`` (:mod:`scflow.repro.samples`); finally the run's CSV. ``method`` fixes the
    notebook's switches (e.g. ``lambda_bi = 0``).
    """
    from IPython.display import display

    if 1 not in P.nfe_list or 4 not in P.nfe_list:
        raise ValueError(f"nfe_list {P.nfe_list} must contain 1 and 4 (the Fig. 6 row)")
    method_name = method.label
    cfg = distill_config(P, method)  # before any compute: a switch the run contradicts is refused
    results = ResultsWriter(P)
    S = prepare(upstream_params(P))  # the preset's cached autoencoder + teacher (notebook 01)
    extractor = make_extractor(P, S.device)  # this run's fid_backend
    z1 = fixed_noise(P.n_eval, S.latent_shape, P.seed)  # the same noise for every NFE and method
    print("cache hits:", S.cache_hits, "| device:", S.device)

    d, history = distill(S, cfg, P.distill_steps, compile=P.compile)  # resumes / reuses its cache
    terms = [k for k in LOSS_TERMS if k in history[-1]]
    every = max(1, len(history) // 50)
    for h in history[::every]:
        for k in terms:
            if k in h:  # a term is absent before its warm-up ends
                results.add(f"loss_{k}", h[k], method=method_name, step=int(h["step"]))
    show(curve([h["cd"] for h in history], f"{method_name}: L_CD during distillation"),
         f"{P.run_name}_loss", P.preset)
    last = history[-50:]
    print("mean of the last 50 updates:",
          {k: round(sum(h.get(k, 0.0) for h in last) / len(last), 5) for k in terms})

    images, rows = evaluate_nfe(compile_net(d.eval_ema, P.compile), S.codec, z1, P.nfe_list,
                                S.data.images, extractor, method=method_name)
    results.add_rows(rows)
    display(rows_table(rows))
    for m in ("fid", "std_ratio"):
        by_nfe = {r["nfe"]: r["value"] for r in rows if r["metric"] == m}
        show(metric_vs_nfe({method_name: by_nfe}, m), f"{P.run_name}_{m}_vs_nfe", P.preset)
    # the drawn samples themselves, for the report's Figs. 1, 5 and 6 (no new sampling)
    save_samples(Samples.from_tensors(P.run_name, [(method_name, n, images[n])
                                                   for n in P.nfe_list], P.n_show), P.preset)
    nfes = [n for n in P.nfe_list if n <= FIGURE_NFE_MAX]
    show(image_grid([images[n][: P.n_show] for n in nfes], [f"NFE {n}" for n in nfes],
                    title=f"{method_name}: same noise per column"),
         f"{P.run_name}_samples_vs_nfe", P.preset)
    show(image_grid([images[1][: P.n_show], images[4][: P.n_show]], ["1-NFE", "4-NFE"],
                    title=f"Fig. 6 row ({method_name})"),
         f"{P.run_name}_fig6_row", P.preset)
    csv = results.write()
    print("wrote", csv)
    return StudentRun(P, S, method_name, d, history, z1, images, rows, csv)
