"""The opt-in speed switches (scflow.speed): validated, and the same losses as the default step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scflow.compile import compile_net
from scflow.distill import DistillConfig, LatentData, NonFiniteLossError, draw_inputs
from scflow.fidelity import make_fidelity
from scflow.nets import build_velocity_net
from scflow.speed import SpeedConfig
from scflow.trainer import Distiller

pytestmark = pytest.mark.usefixtures("one_thread")


def _distiller(speed: SpeedConfig | None = None, arch: str = "unet_tiny", **kw) -> Distiller:
    torch.manual_seed(0)
    teacher = build_velocity_net(arch, sample_size=8)
    data = LatentData(torch.randn(64, 4, 8, 8, generator=torch.Generator().manual_seed(1)))
    cfg = DistillConfig(fidelity=make_fidelity("paper", student_lr=1e-3), batch_size=4,
                        disc_width=8, warmup_rf=0, warmup_bi=0, **kw)  # every term on
    return Distiller(teacher, data, cfg, device="cpu", speed=speed)


@pytest.mark.parametrize("bad, match", [
    (dict(optimizer="adam"), "optimizer must be one of"),
    (dict(log_every=0), "log_every must be an integer >= 1"),
    (dict(log_every=True), "log_every must be an integer >= 1"),
    (dict(compile_mode="fast"), "compile_mode must be one of"),
    (dict(channels_last=1), "channels_last must be True or False"),
])
def test_bad_switches_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        SpeedConfig(**bad)


def test_inconsistent_switches_fail_before_any_compute():
    teacher, data = nn.Identity(), LatentData(torch.randn(8, 4, 2, 2))
    with pytest.raises(ValueError, match="needs compile='torch'"):
        Distiller(teacher, data, device="cpu", speed=SpeedConfig(compile_mode="max-autotune"))
    cfg = DistillConfig(ckpt_every=10)
    with pytest.raises(ValueError, match=r"ckpt_every \(10\) must be a multiple"):
        Distiller(teacher, data, cfg, device="cpu", speed=SpeedConfig(log_every=3))


def test_compile_mode_reaches_torch_compile(monkeypatch):
    seen = []
    monkeypatch.setattr(torch, "compile", lambda net, **kw: seen.append(kw) or net)
    net = nn.Linear(2, 2)
    compile_net(net, "torch")
    compile_net(net, "torch", "reduce-overhead")
    assert seen == [{}, {"mode": "reduce-overhead"}]


@pytest.mark.parametrize("speed", [SpeedConfig(channels_last=True),
                                   SpeedConfig(optimizer="foreach"),
                                   SpeedConfig(optimizer="fused"),
                                   SpeedConfig(channels_last=True, optimizer="fused")],
                         ids=["channels_last", "foreach", "fused", "channels_last+fused"])
def test_switch_gives_the_default_steps_losses(speed):
    ref, fast = _distiller(arch="unet_small"), _distiller(speed, arch="unet_small")
    if speed.channels_last:
        conv = next(m for m in fast.student.modules() if isinstance(m, nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    if speed.optimizer != "default":
        assert fast.opt.defaults[speed.optimizer] and fast.d_opt.defaults[speed.optimizer]
    for _ in range(3):
        a, b = ref.train_step(), fast.train_step()
        assert a.keys() == b.keys() and {"cd", "gan", "rf", "bi", "r1"} <= a.keys()
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), k
    # Adam moves a weight by about lr whatever its gradient's size: a rounding-level difference
    # of a near-zero gradient can move a weight by up to ~2 lr per update
    lr, steps = 1e-3, 3
    for p, q in zip(ref.target.parameters(), fast.target.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=2 * lr * steps)


def test_default_speed_is_the_unchanged_step():
    a, b = _distiller(), _distiller(SpeedConfig())
    for _ in range(2):
        assert a.train_step() == b.train_step()  # bit-identical


def test_deferred_loss_reading_logs_every_n_updates_with_identical_math(tmp_path):
    ref, lazy = _distiller(), _distiller(SpeedConfig(log_every=3), ckpt_every=3)
    lazy.ckpt_dir = str(tmp_path)
    calls = []
    hist_ref = ref.train(7)
    hist = lazy.train(7, callback=lambda step, logs: calls.append(step))
    assert [h["step"] for h in hist] == calls == [3, 6, 7]  # every 3rd, and the last
    assert lazy.history == hist and len(ref.history) == 7
    by_step = {h["step"]: h for h in hist_ref}
    assert all(h == by_step[h["step"]] for h in hist)  # the same numbers, bit for bit
    for p, q in zip(ref.student.parameters(), lazy.student.parameters(), strict=True):
        assert torch.equal(p, q)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 7
    assert lazy.train_step() == {} and lazy.step_count == 8  # not a logging update


def test_deferred_non_finite_loss_rolls_back_to_the_last_checked_update(tmp_path):
    d = _distiller(SpeedConfig(log_every=3), ckpt_every=3)
    d.ckpt_dir = str(tmp_path)
    d.train(3)
    good = {k: v.clone() for k, v in d.student.state_dict().items()}
    good_opt = [s["exp_avg"].clone() for s in d.opt.state.values()]
    good_lineage = [dict(s) for s in d.lineage]
    assert [h["step"] for h in d.history] == [3]
    assert d.train_step() == {}  # update 4: finite, applied, not yet read
    d.data.latents[:] = float("nan")
    assert d.train_step() == {}  # update 5: non-finite, applied, not yet read
    with pytest.raises(NonFiniteLossError, match=r"step 5: loss term 'cd'") as err:
        d.train_step()  # update 6 reads 4-6
    assert "rolled back to update 3" in "".join(err.value.__notes__)
    assert d.step_count == 3 and [h["step"] for h in d.history] == [3]
    assert d.lineage == good_lineage and d.lineage[-1]["last"] == 3
    assert all(torch.equal(good[k], v) for k, v in d.student.state_dict().items())
    assert all(torch.equal(a, s["exp_avg"]) for a, s in zip(good_opt, d.opt.state.values(),
                                                             strict=True))
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 3


def test_bf16_autocast_covers_every_network_call_with_fp32_weights():
    d = _distiller(mixed_precision="bf16")
    seen: dict[str, set] = {}
    for name in ("teacher", "student", "target", "disc"):
        for m in getattr(d, name).modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.register_forward_hook(
                    lambda mod, i, out, n=name: seen.setdefault(n, set()).add(out.dtype))
    ref = _distiller()
    for _ in range(2):
        a, b = ref.train_step(), d.train_step()
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=0.1, abs=1e-3), k  # bf16 rounding
    assert seen == {n: {torch.bfloat16} for n in ("teacher", "student", "target", "disc")}
    assert all(p.dtype == torch.float32 for n in ("student", "target", "eval_ema", "disc")
               for p in getattr(d, n).parameters())


def test_attention_runs_through_sdpa(monkeypatch):
    net = build_velocity_net("unet_small", sample_size=8)
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **kw: calls.append(1) or sdpa(*a, **kw))
    net(torch.randn(2, 4, 8, 8), torch.rand(2))
    blocks = [m for m in net.modules() if type(m).__name__ == "Attention"]
    assert len(blocks) == 4 and len(calls) == 4  # down (1), middle (1) and up (2) blocks


def test_backend_flags_are_switched_on(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    precision = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        _distiller(SpeedConfig(cudnn_benchmark=True))
        assert torch.backends.cudnn.benchmark
        assert torch.get_float32_matmul_precision() == "highest"
        _distiller(SpeedConfig(tf32=True))
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(precision)


def test_non_blocking_draws_are_the_same_draws():
    data = LatentData(torch.randn(16, 4, 2, 2))
    a = draw_inputs(data, DistillConfig(batch_size=4), 5)
    b = draw_inputs(data, DistillConfig(batch_size=4), 5, non_blocking=True)
    assert all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("z0", "z1", "t", "u_s", "u_k"))
