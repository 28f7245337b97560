"""FLOP accounting (scflow.flops): counts against hand counts of tiny nets, the matmul rate."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scflow.distill import DistillConfig, LatentData
from scflow.fidelity import make_fidelity
from scflow.flops import (
    UpdateCost,
    count_flops,
    flops_by_op,
    matmul_peak,
    time_per_call,
    update_flops,
)
from scflow.trainer import Distiller

pytestmark = pytest.mark.usefixtures("one_thread")

B, C, H, W, HID = 4, 4, 6, 5, 8
CONV1 = 2 * H * W * HID * C * 9  # per example: 3x3 conv C -> HID, 'same' padding
CONV2 = 2 * H * W * C * HID  # per example: 1x1 conv HID -> C
DCONV = 2 * H * W * C * 1  # per example: the discriminator's 1x1 conv C -> 1


class TinyVelocity(nn.Module):
    """``v(z, t) = conv1x1(relu(conv3x3(z)))`` (t ignored): FLOPs countable by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(C, HID, 3, padding=1)
        self.conv2 = nn.Conv2d(HID, C, 1)

    def forward(self, z, t, cond=None):
        return self.conv2(torch.relu(self.conv1(z)))


class TinyD(nn.Module):
    """``D(z) = mean(conv1x1(z))``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(C, 1, 1)

    def forward(self, z, t=None, cond=None):
        return self.conv(z).mean(dim=(1, 2, 3))


def test_forward_backward_of_a_small_net_matches_hand_count():
    net = nn.Sequential(nn.Conv2d(C, HID, 3, padding=1), nn.ReLU(), nn.Conv2d(HID, C, 1),
                        nn.Flatten(), nn.Linear(C * H * W, 3))
    x = torch.randn(B, C, H, W)  # no gradient: the first conv computes no input gradient
    lin = 2 * C * H * W * 3
    forward = B * (CONV1 + CONV2 + lin)
    assert count_flops(lambda: net(x)) == forward
    # backward: weight and input gradients of the linear and the 1x1 conv, weight only of conv1
    backward = B * (2 * lin + 2 * CONV2 + CONV1)
    assert count_flops(lambda: net(x).sum().backward()) == forward + backward
    ops = flops_by_op(lambda: net(x).sum().backward())
    assert ops["aten.convolution_backward"] == B * (2 * CONV2 + CONV1)
    assert count_flops(lambda: torch.mm(torch.ones(3, 5), torch.ones(5, 7))) == 2 * 3 * 5 * 7


def _distiller(full: bool, **kw) -> Distiller:
    torch.manual_seed(0)
    off = {} if full else {"lambda_gan": 0.0, "lambda_rf": 0.0, "lambda_bi": 0.0}
    cfg = DistillConfig(fidelity=make_fidelity("paper"), batch_size=B, warmup_rf=0, warmup_bi=0,
                        **off, **kw)
    return Distiller(TinyVelocity(), LatentData(torch.randn(16, C, H, W)), cfg,
                     disc=TinyD(), device="cpu")


def test_cd_update_flops_match_hand_count():
    net_fwd = CONV1 + CONV2
    student_bwd = 2 * CONV2 + CONV1  # z_t has no gradient: conv1's input gradient is skipped
    # teacher (B) + target (B) + student (B) forward, the student's backward
    assert update_flops(_distiller(full=False)) == B * (3 * net_fwd + student_bwd)


def test_full_update_flops_match_hand_count():
    # without R1 (gamma 0: its double backward has no simple hand count; it is counted anyway)
    d = _distiller(full=True, r1_gamma=0.0)
    net_fwd, student_bwd = CONV1 + CONV2, 2 * CONV2 + CONV1
    student = (B * net_fwd  # teacher on z_t
               + 2 * B * net_fwd  # target on z_s and z_k (L_CD, L_BI)
               + 2 * B * (net_fwd + student_bwd)  # student on z_t and z1, forward + backward
               + B * (net_fwd + student_bwd)  # student on z_hat (L_RF)
               + B * 2 * DCONV)  # D(x1) forward + input gradient (D frozen)
    disc = 2 * B * 2 * DCONV  # D on real and fake (2B): forward + weight gradient
    assert update_flops(d) == student + disc
    with_r1 = update_flops(_distiller(full=True))
    assert with_r1 > student + disc  # R1 adds the gradient penalty's double backward


def test_counting_runs_one_update_and_refuses_compiled_distillers():
    d = _distiller(full=False)
    update_flops(d)
    assert d.step_count == 1
    d.compile = "torch"  # as a compiled Distiller would say
    with pytest.raises(ValueError, match="eager Distiller"):
        update_flops(d)


def test_count_scales_linearly_with_the_batch():
    a = update_flops(_distiller(full=True))
    torch.manual_seed(0)
    cfg = DistillConfig(fidelity=make_fidelity("paper"), batch_size=2 * B, warmup_rf=0,
                        warmup_bi=0)
    d = Distiller(TinyVelocity(), LatentData(torch.randn(16, C, H, W)), cfg, disc=TinyD(),
                  device="cpu")
    assert update_flops(d) == 2 * a


def test_matmul_peak_and_update_cost():
    rate = matmul_peak("cpu", torch.float32, n=128, repeats=2)
    assert math.isfinite(rate) and rate > 1e6  # any CPU does > 1 MFLOP/s
    calls = []
    assert time_per_call(lambda: calls.append(1), "cpu", calls=2, blocks=3, warmup=1) >= 0
    assert len(calls) == 1 + 2 * 3
    cost = UpdateCost(flops=4e9, seconds=0.5, peak_flop_s=16e9, peak_mem_gib=1.0)
    assert cost.flop_s == 8e9 and cost.pct_of_peak == 50.0
    assert cost.row() == {"gflop_per_update": 4.0, "ms_per_update": 500.0, "gflop_per_s": 8.0,
                          "pct_of_peak": 50.0, "peak_mem_gib": 1.0}
