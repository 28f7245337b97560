"""Learning-rate and evaluation-EMA schedules: pure functions of the update index."""

from __future__ import annotations

import math

import pytest

from scflow.schedule import eval_ema_decay_at, lr_factor


def test_constant_is_one_everywhere():
    assert all(lr_factor(it, 10, "constant") == 1.0 for it in range(1, 11))
    assert lr_factor(5000, 0, "constant") == 1.0  # no total needed


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_decays_from_one_towards_zero_monotonically(kind):
    total = 2000
    f = [lr_factor(it, total, kind) for it in range(1, total + 1)]
    assert f[0] == 1.0
    assert all(a >= b for a, b in zip(f, f[1:], strict=False))
    assert 0 < f[-1] < 1e-3 or (kind == "linear" and f[-1] == pytest.approx(1 / total))


def test_cosine_values():
    assert lr_factor(51, 100, "cosine") == pytest.approx(0.5)  # half way: cos(pi/2) = 0
    assert lr_factor(26, 100, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_linear_values():
    assert lr_factor(51, 100, "linear") == pytest.approx(0.5)
    assert lr_factor(100, 100, "linear") == pytest.approx(0.01)


@pytest.mark.parametrize("it,total", [(0, 10), (11, 10), (1, 0)])
def test_decaying_schedules_refuse_steps_outside_the_run(it, total):
    with pytest.raises(ValueError, match="1 <= it <= total"):
        lr_factor(it, total, "cosine")


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        lr_factor(1, 10, "step")


def test_eval_ema_warmup():
    assert eval_ema_decay_at(1, 0.999, warmup=False) == 0.999
    assert eval_ema_decay_at(1, 0.999, warmup=True) == pytest.approx(2 / 11)
    assert eval_ema_decay_at(100_000, 0.999, warmup=True) == 0.999
    # the share of the starting weights after 2,000 updates: 13.5% without warm-up, ~0 with it
    share = lambda warm: math.prod(eval_ema_decay_at(k, 0.999, warm)  # noqa: E731
                                   for k in range(1, 2001))
    assert share(False) == pytest.approx(0.999 ** 2000)
    assert share(True) < 1e-6
