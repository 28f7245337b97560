"""Closed-form checks of the flow-matching basics (Eq. 1, 3, 5) and the Euler sampler."""

import pytest
import torch

from scflow.flow import (
    cfg_combine,
    denoise,
    f_theta,
    flow_matching_loss,
    guided,
    interpolant,
    velocity_target,
)
from scflow.samplers import euler_sample, sample_batched, time_grid


def test_interpolant_endpoints_and_midpoint():
    z0, z1 = torch.zeros(2, 3), torch.ones(2, 3) * 4
    assert torch.equal(interpolant(z0, z1, torch.zeros(2)), z0)
    assert torch.equal(interpolant(z0, z1, torch.ones(2)), z1)
    torch.testing.assert_close(interpolant(z0, z1, torch.tensor([0.25, 0.5])),
                               torch.tensor([[1.0] * 3, [2.0] * 3]))


def test_flow_matching_loss_zero_for_exact_velocity_and_positive_otherwise():
    z0, z1, t = torch.randn(8, 2), torch.randn(8, 2), torch.rand(8)
    exact = lambda z, t, c: velocity_target(z0, z1)  # noqa: E731
    assert flow_matching_loss(exact, z0, z1, t).item() == 0.0
    zero = lambda z, t, c: torch.zeros_like(z)  # noqa: E731
    torch.testing.assert_close(flow_matching_loss(zero, z0, z1, t), (z1 - z0).pow(2).mean())


def test_denoise_eq5():
    z, v = torch.full((2, 1, 2, 2), 3.0), torch.full((2, 1, 2, 2), 2.0)
    assert torch.equal(denoise(z, torch.zeros(2), v), z)  # f(z, 0) = z exactly
    torch.testing.assert_close(denoise(z, torch.tensor([0.5, 1.0]), v)[:, 0, 0, 0],
                               torch.tensor([2.0, 1.0]))


def test_f_theta_recovers_data_on_straight_path():
    z0, z1, t = torch.randn(4, 3), torch.randn(4, 3), torch.rand(4)
    oracle = lambda z, t, c: z1 - z0  # noqa: E731
    torch.testing.assert_close(f_theta(oracle, interpolant(z0, z1, t), t), z0)


def test_cfg_arithmetic_eq3():
    vc, vu = torch.tensor([2.0]), torch.tensor([1.0])
    torch.testing.assert_close(cfg_combine(vc, vu, 1.5), torch.tensor([2.5]))
    torch.testing.assert_close(cfg_combine(vc, vu, 1.0), vc)


def test_guided_wrapper_batches_both_branches():
    calls = []

    def net(z, t, c):
        calls.append(c.clone())
        return z * 0 + c.float().view(-1, 1)  # velocity = the label value

    v = guided(net, null_cond=10, scale=2.0)
    out = v(torch.zeros(3, 1), torch.rand(3), torch.tensor([1, 2, 3]))
    assert len(calls) == 1 and calls[0].tolist() == [1, 2, 3, 10, 10, 10]
    torch.testing.assert_close(out.squeeze(1), 2 * torch.tensor([1.0, 2, 3]) - 10)
    for bad in (0.5, float("nan")):
        with pytest.raises(ValueError):
            guided(net, 10, bad)


def test_time_grid():
    assert time_grid(1) == [1.0, 0.0]
    assert time_grid(4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    with pytest.raises(ValueError):
        time_grid(0)


@pytest.mark.parametrize("nfe", [1, 2, 5, 25])
def test_euler_exact_on_constant_velocity(nfe):
    z0, z1 = torch.randn(6, 2), torch.randn(6, 2)
    const = lambda z, t, c: z1 - z0  # noqa: E731
    torch.testing.assert_close(euler_sample(const, z1, nfe), z0)


def test_euler_on_linear_field_matches_product_formula():
    # v = a z  ->  z_{i+1} = (1 - a/N) z_i, so after N steps z1 * (1 - a/N)^N
    a, n = 0.7, 4
    z1 = torch.randn(3, 2)
    out = euler_sample(lambda z, t, c: a * z, z1, n)
    torch.testing.assert_close(out, z1 * (1 - a / n) ** n)


def test_nfe1_is_f_at_t1_and_trajectory_z0_sequence():
    z1 = torch.randn(5, 2)
    vel = lambda z, t, c: z * t.view(-1, 1) + 1.0  # noqa: E731
    torch.testing.assert_close(euler_sample(vel, z1, 1), f_theta(vel, z1, torch.ones(5)))
    tr = euler_sample(vel, z1, 4, return_trajectory=True)
    assert tr.times == time_grid(4) and len(tr.states) == 5 and len(tr.z0_estimates) == 4
    torch.testing.assert_close(tr.sample, euler_sample(vel, z1, 4))
    torch.testing.assert_close(tr.z0_estimates[2], f_theta(vel, tr.states[2], torch.full((5,), 0.5)))


def test_sample_batched_equals_one_batch():
    z1 = torch.randn(10, 2)
    vel = lambda z, t, c: torch.sin(z) + t.view(-1, 1)  # noqa: E731
    torch.testing.assert_close(sample_batched(vel, z1, 3, batch_size=3), euler_sample(vel, z1, 3))
