"""Algorithm 2 (time-skip generation) and the time sampling of Algorithm 1."""

import pytest
import torch

from scflow.timeskip import sample_times, time_skip


def test_time_skip_hand_computed():
    t = torch.tensor([0.05, 0.5, 0.97, 0.0, 1.0])
    u_s = torch.tensor([0.5, 0.5, 0.5, 0.9, 0.9])
    u_k = torch.tensor([0.5, 0.2, 0.5, 0.9, 0.9])
    ts = time_skip(t, 0.1, u_s, u_k)
    # r_s = min(t, 0.1) = [.05, .1, .1, 0, .1]; r_k = min(1-t, .1) = [.1, .1, .03, .1, 0]
    torch.testing.assert_close(ts.d_s, torch.tensor([0.025, 0.05, 0.05, 0.0, 0.09]))
    torch.testing.assert_close(ts.d_k, torch.tensor([0.05, 0.02, 0.015, 0.09, 0.0]))
    torch.testing.assert_close(ts.t_s, t - ts.d_s)
    torch.testing.assert_close(ts.t_k, t + ts.d_k)


@pytest.mark.parametrize("t_skip", [0.0, 0.1, 0.5, 1.0])
def test_time_skip_ranges_many_samples(t_skip):
    g = torch.Generator().manual_seed(0)
    edge = torch.tensor([0.0, 1e-7, 1e-3, 0.5, 1 - 1e-3, 1 - 1e-7, 1.0])
    t = torch.cat([edge, torch.rand(20000, generator=g)])
    u_s, u_k = torch.rand(t.shape, generator=g), torch.rand(t.shape, generator=g)
    ts = time_skip(t, t_skip, u_s, u_k)
    assert (ts.t_s >= 0).all() and (ts.t_s <= ts.t).all()
    assert (ts.t <= ts.t_k).all() and (ts.t_k <= 1).all()
    assert (ts.d_s.abs() <= t_skip).all() and (ts.d_k.abs() <= t_skip).all()
    if t_skip > 0:  # the skips do fill their allowed range
        assert ts.d_s.max() > 0.9 * t_skip and ts.d_k.max() > 0.9 * t_skip
    assert ts.d_s[0] == 0 and ts.d_k[len(edge) - 1] == 0  # no room at t=0 / t=1


def test_time_skip_rejects_bad_threshold():
    t = torch.rand(3)
    with pytest.raises(ValueError, match="t_skip"):
        time_skip(t, 1.5, t, t)
    with pytest.raises(ValueError, match="t_skip"):
        time_skip(t, -0.1, t, t)


def test_grid_sampling_on_grid():
    g = torch.Generator().manual_seed(1)
    t = sample_times(5000, "grid", grid_points=8, generator=g)
    i = t * 8
    torch.testing.assert_close(i, i.round())
    assert set(i.round().long().tolist()) == set(range(1, 9))  # i ~ U[1, N]: 0 never drawn


def test_continuous_sampling_range_and_reproducible():
    t1 = sample_times(4000, "continuous", generator=torch.Generator().manual_seed(2))
    t2 = sample_times(4000, "continuous", generator=torch.Generator().manual_seed(2))
    assert torch.equal(t1, t2)
    assert t1.min() >= 0 and t1.max() < 1
    assert len(t1.unique()) > 3900  # not a grid
    assert abs(t1.mean().item() - 0.5) < 0.03


def test_sampling_rejects_unknown_mode():
    with pytest.raises(ValueError, match="time sampling"):
        sample_times(3, "uniform")
