"""The opt-in ``compile`` switch (scflow.compile): same losses and samples as eager execution."""

from __future__ import annotations

import pytest
import torch

from scflow.compile import COMPILE_CHOICES, compile_net, torch_compile_usable
from scflow.distill import DistillConfig, LatentData
from scflow.fidelity import make_fidelity
from scflow.nets import build_velocity_net
from scflow.repro.presets import PARAMS, PRESETS
from scflow.trainer import Distiller


def test_compile_parameter_is_declared_neutral_and_validated():
    assert PARAMS["compile"].choices == COMPILE_CHOICES
    assert PARAMS["compile"].neutral == PRESETS["mini"]["compile"] == "no"
    net = torch.nn.Linear(2, 2)
    assert compile_net(net, "no") is net
    with pytest.raises(ValueError, match="compile must be one of"):
        compile_net(net, "jit")
    with pytest.raises(ValueError, match="compile must be one of"):  # before any compute
        Distiller(build_velocity_net("unet_tiny", sample_size=8),
                  LatentData(torch.randn(8, 4, 8, 8)), device="cpu", compile="yes")


def _distiller(mode: str) -> Distiller:
    torch.manual_seed(0)
    teacher = build_velocity_net("unet_tiny", sample_size=8)
    data = LatentData(torch.randn(64, 4, 8, 8, generator=torch.Generator().manual_seed(1)))
    fidelity = make_fidelity("paper", student_lr=1e-4)
    cfg = DistillConfig(fidelity=fidelity, batch_size=8, disc_width=8, seed=0, warmup_rf=0,
                        warmup_bi=0)  # every term on
    return Distiller(teacher, data, cfg, device="cpu", compile=mode)


@pytest.mark.slow
def test_compiled_step_and_sampling_match_eager():
    usable, why = torch_compile_usable()
    if not usable:
        pytest.skip(why)
    eager, compiled = _distiller("no"), _distiller("torch")
    for _ in range(2):
        a, b = eager.train_step(), compiled.train_step()
        assert a.keys() == b.keys() and {"cd", "gan", "rf", "bi"} <= a.keys()
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), k
    # the modules (what is saved and EMA-updated) were trained, not a copy of them. Adam moves
    # each weight by about lr per update whatever the gradient's size, so a rounding-level
    # gradient difference on a near-zero gradient can shift a weight by up to ~2 lr per update
    lr, steps = 1e-4, 2
    for p, q in zip(eager.student.parameters(), compiled.student.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=2 * lr * steps)
    moved = [(p - p0).abs().max() for p, p0 in zip(compiled.student.parameters(),
                                                     compiled.teacher.parameters(), strict=True)]
    assert max(moved) > 0.5 * lr  # the compiled run did train the student module
    assert not any(k.startswith("_orig_mod") for k in compiled.student.state_dict())
    z1 = torch.randn(8, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(compiled.sample(z1, 2), eager.sample(z1, 2), rtol=1e-4, atol=1e-5)
