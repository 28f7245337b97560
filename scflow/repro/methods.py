"""The rows of Table 4: Algorithm 1 with some of its loss terms switched off, defined once.

Each row fixes a few parameters (its *switches*); everything else comes from the run.
Notebooks 02-05 teach one row each, the training-budget study (:mod:`scflow.repro.budget`)
distils them at several learning rates, the text-to-image miniature
(:mod:`scflow.repro.t2i_experiment`) distils CD and SCFlow, and ``make gpu-check``
(:mod:`scflow.repro.gpu_check`) times CD against SCFlow. The switches are merged into a run's
parameters by :func:`scflow.repro.configs.distill_config`, which refuses a switch that
contradicts a value the run sets explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Method:
    """One row of Table 4."""

    key: str
    """Short name: the budget study's and the text-to-image CSVs' method (``cd``, ``gan``, ...)."""
    label: str
    """The method column of its notebook's CSV (``cd``, ``cd+trunc+gan``, ...)."""
    row: str
    """The row's name in the paper's Table 4."""
    switches: Mapping[str, float]
    """Parameter -> the value this row fixes."""
    notebook: str
    """The notebook that teaches the row."""
    run: str
    """Its run file and CSV: ``papermill_runs/<run>.yaml``, ``results/<preset>/<run>.csv``."""


def _method(key: str, label: str, row: str, switches: dict[str, float], notebook: str,
            run: str) -> Method:
    return Method(key, label, row, MappingProxyType(switches), notebook, run)


TABLE4: Mapping[str, Method] = MappingProxyType({m.key: m for m in (
    # L_CD alone: no truncation (t_trunc 0 empties Eq. 8's mask), no GAN, no reflow, no BI
    _method("cd", "cd", "CD", {"t_trunc": 0.0, "lambda_gan": 0.0, "lambda_rf": 0.0,
                               "lambda_bi": 0.0},
            "02_naive_consistency_distillation", "table4_cd"),
    # + truncation (Eq. 8) and the GAN on the one-step sample (Eq. 7)
    _method("gan", "cd+trunc+gan", "+GAN", {"lambda_rf": 0.0, "lambda_bi": 0.0},
            "03_truncation_and_gan", "table4_gan"),
    # + the reflow (self-correction) loss (Eq. 9)
    _method("rf", "cd+trunc+gan+rf", "+RF", {"lambda_bi": 0.0}, "04_reflow_loss", "table4_rf"),
    # + the bidirectional loss (Eq. 10): full SCFlow, every term of Algorithm 1
    _method("scflow", "scflow", "+BI", {}, "05_bidirectional_loss", "table4_bi"),
)})
"""The four rows, in the paper's order, by :attr:`Method.key`."""


def table4_method(key: str) -> Method:
    """The row named ``key``; ``ValueError`` listing the valid names otherwise."""
    if key not in TABLE4:
        raise ValueError(f"unknown method {key!r}; valid: {', '.join(TABLE4)}")
    return TABLE4[key]
