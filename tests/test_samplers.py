"""Samplers against a flow with a closed-form solution, and their shared signature."""

from __future__ import annotations

import pytest
import torch

from scflow.samplers import SAMPLERS, euler_sample, heun_sample, sample_batched

M, S = 1.5, 0.3  # data z0 ~ N(M, S^2), noise z1 ~ N(0, 1)


def gaussian_velocity(z: torch.Tensor, t: torch.Tensor, cond: object = None) -> torch.Tensor:
    """E[z1 - z0 | z_t = z] for z_t = (1 - t) z0 + t z1 with Gaussian z0: exact marginal velocity."""
    t = t.reshape(-1, *([1] * (z.dim() - 1))).to(z.dtype)
    var = (1 - t) ** 2 * S**2 + t**2
    return (t - (1 - t) * S**2) / var * (z - (1 - t) * M) - M


def exact_sample(z1: torch.Tensor) -> torch.Tensor:
    """The ODE's solution at t = 0: the monotone map z1 -> M + S z1 (Gaussian to Gaussian)."""
    return M + S * z1


def error(sampler, nfe: int) -> float:
    z1 = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return (sampler(gaussian_velocity, z1, nfe) - exact_sample(z1)).abs().max().item()


def test_heun_is_second_order_and_euler_first_order():
    # halving the step: Euler's error halves, Heun's quarters (global orders 1 and 2)
    e_euler = [error(euler_sample, n) for n in (16, 32, 64)]
    e_heun = [error(heun_sample, 2 * n) for n in (16, 32, 64)]
    for a, b in zip(e_euler, e_euler[1:], strict=False):
        assert 1.7 < a / b < 2.3
    for a, b in zip(e_heun, e_heun[1:], strict=False):
        assert 3.5 < a / b < 4.5  # -> 4 as h -> 0 (3.7, 3.8 here)
    # at equal network evaluations Heun is far closer to the converged sample
    assert error(heun_sample, 24) < error(euler_sample, 24) / 10


def test_heun_is_exact_on_straight_paths():
    c = torch.tensor([0.7, -0.2], dtype=torch.float64)
    v = lambda z, t, cond=None: c.expand_as(z)  # noqa: E731
    z1 = torch.randn(5, 2, dtype=torch.float64)
    assert torch.allclose(heun_sample(v, z1, 2), z1 - c)


def test_heun_counts_network_evaluations():
    calls = []

    def v(z, t, cond=None):
        calls.append(float(t[0]))
        return torch.zeros_like(z)

    heun_sample(v, torch.zeros(3, 1), 8)
    assert len(calls) == 8
    assert calls == [1.0, 0.75, 0.75, 0.5, 0.5, 0.25, 0.25, 0.0]


@pytest.mark.parametrize("nfe", [0, 1, 3])
def test_heun_refuses_odd_nfe(nfe):
    with pytest.raises(ValueError, match="even"):
        heun_sample(gaussian_velocity, torch.zeros(2, 1), nfe)


def test_samplers_share_one_signature_through_sample_batched():
    z1 = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for name, fn in SAMPLERS.items():
        whole = fn(gaussian_velocity, z1, 4)
        chunked = sample_batched(gaussian_velocity, z1, 4, batch_size=3, sampler=name)
        assert torch.equal(whole, chunked)
    with pytest.raises(ValueError, match="unknown sampler"):
        sample_batched(gaussian_velocity, z1, 4, sampler="dopri5")
