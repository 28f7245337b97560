"""Paper vs authors' code: every difference of docs/METHOD.md §3 as one switch.

``make_fidelity("paper")`` or ``make_fidelity("code")`` sets every row of the table to one side;
keyword arguments override single switches, e.g. ``make_fidelity("code", distance="l2")``.

| field | "paper" | "code" |
|---|---|---|
| distance (L_CD, L_BI) | ``l2`` (squared L2) | ``pseudo_huber`` (c = 0.01) |
| time_sampling | ``grid`` (N points, i ~ U[1, N]) | ``continuous`` (U[0, 1)) |
| trunc_rule | ``t`` (t <= t_trunc) | ``t_s`` (t - d_s < t_trunc) |
| eval_decay | 0.9 (the paper has ONE EMA, the target) | 0.9999 (separate evaluation EMA) |
| student_lr / disc_lr | 1e-5 / 1e-5 | 2e-5 / 1e-4 (AdamW, wd 0, constant) |
| d_head | ``logit`` | ``logit``; T2I: ``sigmoid_softplus`` (the code's quirk) |

Only real switches live here: hyperparameters on which paper and code agree (the target EMA
decay 0.9, t_skip, the loss weights) or that are plain values of a run (t_trunc and the
warm-ups, which the authors' T2I scripts set to 0.1 and (500, 0, 500)) are fields of
:class:`scflow.distill.DistillConfig`. ``huber_c`` and ``grid_points`` parametrise a switch.
The paper does not state N of its time grid: ``grid_points = 1000`` (the usual number of
diffusion timesteps) is our choice. The evaluation EMA decay must scale with run length:
override ``eval_decay`` for short runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from scflow.checks import choice, integer, number
from scflow.losses import DISTANCES, TRUNC_RULES
from scflow.timeskip import TIME_SAMPLINGS

SIDES = ("paper", "code")
D_HEADS = ("logit", "sigmoid_softplus")


@dataclass(frozen=True)
class FidelityConfig:
    """Every paper-vs-code switch (see the module docstring); validated on construction."""

    side: str = "paper"  # which side the unset values came from (bookkeeping only)
    distance: str = "l2"
    huber_c: float = 0.01
    time_sampling: str = "grid"
    grid_points: int = 1000
    trunc_rule: str = "t"
    eval_decay: float = 0.9
    student_lr: float = 1e-5
    disc_lr: float = 1e-5
    d_head: str = "logit"

    def __post_init__(self) -> None:
        choice("side", self.side, SIDES)
        choice("distance", self.distance, DISTANCES)
        choice("time_sampling", self.time_sampling, TIME_SAMPLINGS)
        choice("trunc_rule", self.trunc_rule, TRUNC_RULES)
        choice("d_head", self.d_head, D_HEADS)
        number("huber_c", self.huber_c, gt=0.0)
        integer("grid_points", self.grid_points, ge=1)
        number("eval_decay", self.eval_decay, ge=0.0, lt=1.0)
        for name in ("student_lr", "disc_lr"):
            number(name, getattr(self, name), gt=0.0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_PAPER = FidelityConfig()
_CODE = replace(_PAPER, side="code", distance="pseudo_huber", time_sampling="continuous",
                trunc_rule="t_s", eval_decay=0.9999, student_lr=2e-5, disc_lr=1e-4)
_T2I = {"paper": {}, "code": dict(d_head="sigmoid_softplus")}


def make_fidelity(side: str = "paper", t2i: bool = False, **overrides: Any) -> FidelityConfig:
    """All switches set to ``side`` ("paper" | "code"), then ``overrides`` applied.

    ``t2i=True`` selects the text-to-image value of the row that differs for T2I only (d_head).
    ``None`` overrides are ignored (handy for "from fidelity" notebook parameters); an unknown
    key or an out-of-range value raises ``ValueError`` before any compute.
    """
    choice("fidelity", side, SIDES)
    base = replace(_PAPER if side == "paper" else _CODE, **_T2I[side] if t2i else {})
    names = {f.name for f in fields(FidelityConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown fidelity switch(es) {unknown}; valid: {sorted(names)}")
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
