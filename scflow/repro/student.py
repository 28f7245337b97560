"""One student of Table 4: the steps notebooks 02-05 share, one short call each.

Each of those notebooks teaches one row of Table 4 and shows, in its own cells, the row's
configuration, the :class:`~scflow.trainer.Distiller` and its training, the loss curves, the
samples at every NFE, their metrics and the figures. What is the same for every row lives
here: the preset's teacher with the evaluation noise and the FID features
(:func:`student_setup`), the CSV's loss rows, the figures' layout and saving, the samples file.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from scflow.evaluate import bank_noise
from scflow.repro.experiment import Setup, make_extractor, prepare, upstream_params
from scflow.repro.plots import image_grid, trajectory_figure
from scflow.repro.results import ResultsWriter, save_figure
from scflow.repro.samples import Samples, save_samples
from scflow.samplers import euler_sample

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
class StudentSetup(Setup):
    """The preset's :class:`~scflow.repro.experiment.Setup` plus what a student's evaluation needs."""

    z1: Tensor
    """The first noise set of the evaluation bank (:func:`scflow.evaluate.bank_noise`), for the
    trajectories; :func:`scflow.evaluate.evaluate_bank` scores every set."""
    extractor: Any
    """The FID features of this run's ``fid_backend``."""
    results: ResultsWriter
    """This run's CSV rows, written at the end."""


def student_setup(params: Mapping[str, Any]) -> StudentSetup:
    """Notebook 01's autoencoder and teacher of the preset (cached), the first noise set of the
    evaluation bank, the FID features and the run's CSV writer.

    ``nfe_list`` must hold NFE 1 and 4 (the Fig. 6 row): checked before anything is loaded.
    """
    if 1 not in params["nfe_list"] or 4 not in params["nfe_list"]:
        raise ValueError(f"nfe_list {params['nfe_list']} must contain 1 and 4 (the Fig. 6 row)")
    results = ResultsWriter(params)
    setup = prepare(upstream_params(params))  # the preset's cached autoencoder + teacher
    extractor = make_extractor(params, setup.device)  # this run's fid_backend
    z1 = bank_noise(0, params["n_eval"], setup.latent_shape)
    print("cache hits:", setup.cache_hits, "| device:", setup.device)
    return StudentSetup(**vars(setup), z1=z1, extractor=extractor, results=results)


def record_losses(results: ResultsWriter, history: Sequence[Mapping[str, float]],
                  method: str, points: int = 50) -> None:
    """The CSV's loss rows: every loss term at about ``points`` updates along the history."""
    terms = [k for k in LOSS_TERMS if k in history[-1]]
    every = max(1, len(history) // points)
    for h in history[::every]:
        for k in terms:
            if k in h:  # a term is absent before its warm-up ends
                results.add(f"loss_{k}", h[k], method=method, step=int(h["step"]))


def loss_figure(history: Sequence[Mapping[str, float]], terms: Sequence[str], title: str,
                smooth: int = 50) -> plt.Figure:
    """The loss terms ``terms`` (history keys, e.g. ``cd`` or ``d_real``) per update, each with
    a running mean over ``smooth`` updates; a term starts where its warm-up ends, and one never
    computed (weight 0, or a warm-up past the last update) is left out."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    terms = [t for t in terms if any(t in h for h in history)]
    for term in terms:
        steps = [h["step"] for h in history if term in h]
        values = torch.tensor([h[term] for h in history if term in h], dtype=torch.float64)
        line, = ax.plot(steps, values.numpy(), alpha=0.25, lw=0.8)
        if len(values) >= smooth > 1:
            mean = torch.nn.functional.avg_pool1d(values.view(1, 1, -1), smooth, stride=1).view(-1)
            ax.plot(steps[smooth - 1:], mean.numpy(), lw=1.5, color=line.get_color(), label=term)
        else:
            line.set_label(term)
    ax.set(title=title, xlabel="update", yscale="log")
    if terms:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metric_by_nfe(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[int, float]:
    """``{nfe: value}`` of one metric from the rows of :func:`scflow.evaluate.evaluate_bank`
    (or :func:`scflow.evaluate.score_nfe`): the mean over the bank's draws."""
    by_nfe: dict[int, list[float]] = {}
    for r in rows:
        if r["metric"] == metric:
            by_nfe.setdefault(r["nfe"], []).append(r["value"])
    return {nfe: sum(v) / len(v) for nfe, v in by_nfe.items()}


def samples_figure(images: Mapping[int, Tensor], nfes: Sequence[int], n_show: int,
                   title: str) -> plt.Figure:
    """The first ``n_show`` samples at each of ``nfes``, one row per NFE (same noise per column)."""
    return image_grid([images[n][:n_show] for n in nfes], [f"NFE {n}" for n in nfes],
                      title=title)


def keep_samples(run_name: str, preset: str, method: str, images: Mapping[int, Tensor],
                 n_show: int) -> Path:
    """Keep the first ``n_show`` samples per NFE in ``samples/<run>.npz`` (the report's Figs.
    1, 5 and 6 are drawn from them: nothing is sampled again)."""
    rows = [(method, n, images[n]) for n in images]
    return save_samples(Samples.from_tensors(run_name, rows, n_show), preset)


def trajectory(net: Any, setup: Setup, z1: Tensor, nfe: int, title: str) -> plt.Figure:
    """Figs. 4 and 7: an ``nfe``-step Euler trajectory of the first noise of ``z1``, its states
    z_t (top) and their one-step estimates f(z_t, t) (bottom), decoded."""
    traj = euler_sample(net, z1[:1].to(setup.device), nfe, return_trajectory=True)
    states = setup.codec.decode(torch.cat(traj.states).float())
    z0s = setup.codec.decode(torch.cat(traj.z0_estimates).float())
    return trajectory_figure(states, z0s, traj.times, title=title)
