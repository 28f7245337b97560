"""Each loss against hand-computed values; truncation at its boundary; EMA; fidelity switches."""

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from scflow.ema import ema_update_, frozen_copy
from scflow.fidelity import FidelityConfig, make_fidelity
from scflow.losses import (
    bi_loss,
    cd_loss,
    distance,
    late_mask,
    pseudo_huber,
    reflow_input,
    rf_loss,
)


def _lat(*vals):
    """Batch of latents (B, 1, 1, K) from nested lists."""
    return torch.tensor(vals, dtype=torch.float32).unsqueeze(1).unsqueeze(1)


# --- distance ---------------------------------------------------------------------------------
def test_l2_distance_hand():
    a, b = _lat([1.0, 2.0], [0.0, 0.0]), _lat([0.0, 0.0], [3.0, -1.0])
    assert distance(a, b, "l2").item() == pytest.approx((1 + 4 + 9 + 1) / 4)


def test_pseudo_huber_hand():
    c = 0.01
    a, b = _lat([3.0, 0.0], [0.0, 0.0]), _lat([0.0, 0.0], [0.0, 4.0])
    ph = lambda d: math.sqrt(d * d + c * c) - c  # noqa: E731
    ex1, ex2 = (ph(3) + ph(0)) / 2, (ph(0) + ph(-4)) / 2
    assert distance(a, b, "pseudo_huber", c).item() == pytest.approx((ex1 + ex2) / 2, rel=1e-6)
    assert ph(0) == 0.0 and pseudo_huber(torch.tensor(0.0), c) == 0
    # ~ |diff| for large diffs, ~ diff^2 / (2c) for small ones
    assert pseudo_huber(torch.tensor(1e-4), c).item() == pytest.approx(1e-8 / (2 * c), rel=1e-3)


def _pseudo_huber_reference(a: torch.Tensor, b: torch.Tensor, c: float) -> float:
    """The code's distance written out: element-wise Pseudo-Huber, the mean over each example's
    elements, then the mean over the batch (plain Python, no torch reductions)."""
    per_example = []
    for x, y in zip(a.flatten(1).tolist(), b.flatten(1).tolist(), strict=True):
        terms = [math.sqrt((u - v) ** 2 + c * c) - c for u, v in zip(x, y, strict=True)]
        per_example.append(sum(terms) / len(terms))
    return sum(per_example) / len(per_example)


# Reductions a wrong implementation could use. (A flat mean over every element is not among
# them: every example of a batch has as many elements, so it is the same number.)
WRONG_DISTANCES = {
    "sum per example": lambda d, c: pseudo_huber(d, c).flatten(1).sum(1).mean(),
    "norm per example": lambda d, c: (torch.sqrt(d.flatten(1).pow(2).sum(1) + c * c) - c).mean(),
    "norm of the batch": lambda d, c: torch.sqrt(d.pow(2).sum() + c * c) - c,
    "sum over the batch": lambda d, c: pseudo_huber(d, c).flatten(1).mean(1).sum(),
    "mean difference first": lambda d, c: pseudo_huber(d.mean(0), c).mean(),
}


def _batch_of_unequal_examples():
    """Three examples, (2, 3, 5) each, at very different scales (small and large differences,
    so the quadratic and the linear regime of Pseudo-Huber both count)."""
    g = torch.Generator().manual_seed(3)
    a = torch.randn(3, 2, 3, 5, generator=g) * torch.tensor([0.003, 0.5, 4.0]).view(3, 1, 1, 1)
    return a, torch.zeros_like(a)


def test_pseudo_huber_means_per_example_then_batch():
    a, b = _batch_of_unequal_examples()
    c = 0.05
    assert distance(a, b, "pseudo_huber", c).item() == pytest.approx(
        _pseudo_huber_reference(a, b, c), rel=1e-5)


@pytest.mark.parametrize("name", WRONG_DISTANCES)
def test_pseudo_huber_reference_rejects_wrong_reductions(name):
    """The check above can fail: each plausible wrong reduction misses the reference."""
    a, b = _batch_of_unequal_examples()
    wrong = WRONG_DISTANCES[name](a - b, 0.05).item()
    assert wrong != pytest.approx(_pseudo_huber_reference(a, b, 0.05), rel=1e-3)


def test_distance_rejects_unknown():
    with pytest.raises(ValueError, match="distance"):
        distance(torch.zeros(1), torch.zeros(1), "l1")


# --- L_CD and truncation ------------------------------------------------------------------------
def test_cd_loss_hand_with_truncation():
    f = _lat([1.0, 1.0], [1.0, 1.0])
    y_s = _lat([0.0, 0.0], [0.0, 0.0])
    z0 = _lat([3.0, 3.0], [3.0, 3.0])
    late = torch.tensor([True, False])
    # example 0 regresses onto z0 (diff -2 -> 4), example 1 onto y_s (diff 1 -> 1)
    assert cd_loss(f, y_s, z0, late, "l2").item() == pytest.approx((4 + 1) / 2)
    assert cd_loss(f, y_s, z0, torch.tensor([False, False])).item() == pytest.approx(1.0)
    assert cd_loss(f, y_s, z0, torch.tensor([True, True])).item() == pytest.approx(4.0)


def test_truncation_paper_rule_boundary():
    tt = 0.4
    t = torch.tensor([0.4 - 1e-6, 0.4, 0.4 + 1e-6, 0.0, 1.0])
    t_s = torch.zeros_like(t)  # irrelevant for the paper rule
    assert late_mask(t, t_s, tt, "t").tolist() == [True, True, False, True, False]
    # a grid time i/N that equals t_trunc in float32 is late as well
    assert late_mask(torch.tensor([4.0]) / 10, torch.zeros(1), tt, "t").item()


def test_truncation_code_rule_boundary():
    tt = 0.4
    t_s = torch.tensor([0.4 - 1e-6, 0.4, 0.4 + 1e-6])
    t = torch.ones(3)  # irrelevant for the code rule
    assert late_mask(t, t_s, tt, "t_s").tolist() == [True, False, False]
    # the rules differ: t above t_trunc but t_s below it is late only for the code
    t, t_s = torch.tensor([0.45]), torch.tensor([0.39])
    assert late_mask(t, t_s, tt, "t_s").item() and not late_mask(t, t_s, tt, "t").item()


def test_truncation_zero_and_one():
    t = torch.tensor([0.0, 0.3, 1.0])
    assert late_mask(t, t, 0.0, "t").tolist() == [True, False, False]
    assert late_mask(t, t, 0.0, "t_s").tolist() == [False, False, False]
    assert late_mask(t, t, 1.0, "t").tolist() == [True, True, True]
    with pytest.raises(ValueError, match="truncation"):
        late_mask(t, t, 0.4, "ts")


# --- L_RF and L_BI ------------------------------------------------------------------------------
def test_reflow_input_and_loss_hand():
    x1 = _lat([2.0, 4.0])
    z1 = _lat([0.0, 8.0])
    t = torch.tensor([0.25])
    z_hat = reflow_input(x1, z1, t)
    torch.testing.assert_close(z_hat, _lat([1.5, 5.0]))  # 0.75 x1 + 0.25 z1
    f_hat = _lat([1.0, 1.0])
    assert rf_loss(x1, f_hat).item() == pytest.approx((1 + 9) / 2)


def test_rf_stop_gradients():
    x1 = _lat([2.0, 4.0]).requires_grad_(True)
    f_hat = _lat([1.0, 1.0]).requires_grad_(True)
    z_hat = reflow_input(x1, _lat([0.0, 0.0]), torch.tensor([0.5]))
    assert not z_hat.requires_grad  # sg(x1) inside z_hat
    rf_loss(x1, f_hat).backward()
    assert x1.grad is None  # sg(x1) as the target
    torch.testing.assert_close(f_hat.grad, _lat([-1.0, -3.0]))  # 2 (f - x1) / 2


def test_bi_loss_hand_and_target_detached():
    f = _lat([1.0, 2.0]).requires_grad_(True)
    y_k = _lat([0.0, 0.0]).requires_grad_(True)
    loss = bi_loss(f, y_k, "l2")
    assert loss.item() == pytest.approx(2.5)
    loss.backward()
    assert y_k.grad is None and f.grad is not None


# --- EMA ----------------------------------------------------------------------------------------
def test_ema_arithmetic():
    src = nn.Linear(1, 1, bias=False)
    ema = frozen_copy(src)
    with torch.no_grad():
        ema.weight.fill_(1.0)
        src.weight.fill_(3.0)
    ema_update_(ema, src, 0.9)
    assert ema.weight.item() == pytest.approx(1.2)
    ema_update_(ema, src, 0.9)
    assert ema.weight.item() == pytest.approx(0.9 * 1.2 + 0.1 * 3)
    ema_update_(ema, src, 0.0)
    assert ema.weight.item() == 3.0
    assert not ema.weight.requires_grad and src.weight.requires_grad


@pytest.mark.parametrize("decay", [1.0, -0.1, 1.5])
def test_ema_rejects_bad_decay(decay):
    src = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="decay"):
        ema_update_(frozen_copy(src), src, decay)


# --- fidelity switches -------------------------------------------------------------------------
def test_fidelity_paper_sets_every_switch():
    f = make_fidelity("paper")
    assert (f.distance, f.time_sampling, f.trunc_rule, f.d_head) == ("l2", "grid", "t", "logit")
    assert (f.eval_decay, f.student_lr, f.disc_lr) == (0.9, 1e-5, 1e-5)


def test_fidelity_code_sets_every_switch():
    f = make_fidelity("code")
    assert (f.distance, f.huber_c, f.time_sampling, f.trunc_rule) == (
        "pseudo_huber", 0.01, "continuous", "t_s")
    assert (f.eval_decay, f.student_lr, f.disc_lr) == (0.9999, 2e-5, 1e-4)
    assert f.d_head == "logit"
    t2i = make_fidelity("code", t2i=True)
    assert t2i == replace(f, d_head="sigmoid_softplus")  # the one row that differs for T2I only
    assert make_fidelity("paper", t2i=True) == make_fidelity("paper")
    # only real switches live here: every field but the switches' own parameters differs
    p, c = make_fidelity("paper").as_dict(), t2i.as_dict()
    same = {k for k in p if p[k] == c[k]}
    assert same == {"huber_c", "grid_points"}


def test_fidelity_overrides():
    f = make_fidelity("code", distance="l2", eval_decay=0.99, time_sampling=None)
    assert f.distance == "l2" and f.eval_decay == 0.99
    assert f.time_sampling == "continuous" and f.trunc_rule == "t_s"  # untouched
    with pytest.raises(ValueError, match="unknown fidelity"):
        make_fidelity("paper", distnce="l2")
    with pytest.raises(ValueError, match="fidelity"):
        make_fidelity("authors")


@pytest.mark.parametrize("bad", [
    dict(eval_decay=-0.5), dict(eval_decay=1.0),
    dict(student_lr=0.0), dict(disc_lr=float("nan")), dict(distance="l1"), dict(grid_points=0),
    dict(d_head="tanh"), dict(huber_c=0.0),
    dict(trunc_rule="ts"), dict(time_sampling="uniform"),
])
def test_fidelity_rejects_invalid(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        make_fidelity("paper", **bad)
    with pytest.raises(ValueError, match=name):
        FidelityConfig(**bad)
