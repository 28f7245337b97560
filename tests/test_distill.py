"""Algorithm 1's step: hand-computed losses, stop-gradients, gating, trainer behaviour."""

import math

import pytest
import torch
from torch import nn

from scflow.discriminator import LatentDiscriminator, discriminator_loss, generator_loss
from scflow.distill import (
    DistillConfig,
    LatentData,
    NonFiniteLossError,
    StepInputs,
    compute_losses,
    draw_inputs,
    loss_weights,
    warmup_active,
)
from scflow.fidelity import make_fidelity
from scflow.nets import build_velocity_net
from scflow.trainer import Distiller

pytestmark = pytest.mark.usefixtures("one_thread")


class LinearVelocity(nn.Module):
    """Closed-form velocity ``v(z, t) = a z + b t`` (scalar parameters a, b)."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, z, t, cond=None):
        return self.a * z + self.b * t.reshape(-1, 1, 1, 1)


class LinearD(nn.Module):
    """Discriminator ``D(z) = k * sum(z)``."""

    def __init__(self, k: float = 0.5) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(k))

    def forward(self, z, t=None, cond=None):
        return self.k * z.flatten(1).sum(1)


def _cfg(**kw):
    switches = {k: kw.pop(k) for k in list(kw) if k in make_fidelity().as_dict()}
    kw.setdefault("warmup_rf", 0)
    kw.setdefault("warmup_bi", 0)
    return DistillConfig(fidelity=make_fidelity("paper", **switches), **kw)


def _inputs():
    z0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]]).reshape(2, 1, 1, 2)
    z1 = torch.tensor([[0.3, 0.8], [-1.0, 2.0]]).reshape(2, 1, 1, 2)
    return StepInputs(z0=z0, z1=z1, t=torch.tensor([0.7, 0.3]), u_s=torch.tensor([0.5, 0.2]),
                      u_k=torch.tensor([0.4, 0.9]))


def _nets():
    return LinearVelocity(0.5, 1.0), LinearVelocity(0.3, 0.2), LinearVelocity(0.4, -0.1)


# --- hand-computed step -----------------------------------------------------------------------
def test_losses_hand_computed_linear_nets():
    teacher, student, target = _nets()
    x = _inputs()
    cfg = _cfg(lambda_gan=0.2, lambda_rf=0.3, lambda_bi=0.4, t_skip=0.1, t_trunc=0.4)
    out = compute_losses(teacher, student, target, LinearD(0.5), x, cfg, it=1)
    z0, z1 = x.z0.flatten(1).tolist(), x.z1.flatten(1).tolist()
    cd = bi = rf = gan = 0.0
    for i, (t, us, uk) in enumerate([(0.7, 0.5, 0.4), (0.3, 0.2, 0.9)]):
        ds, dk = us * min(t, 0.1), uk * min(1 - t, 0.1)
        d_sum = 0.0
        for j in range(2):
            zt = (1 - t) * z0[i][j] + t * z1[i][j]
            v = 0.5 * zt + 1.0 * t  # teacher
            zs, zk = zt - ds * v, zt + dk * v
            ys = zs - (t - ds) * (0.4 * zs - 0.1 * (t - ds))  # target f at t_s
            yk = zk - (t + dk) * (0.4 * zk - 0.1 * (t + dk))  # target f at t_k
            ft = zt - t * (0.3 * zt + 0.2 * t)  # student f at t
            y = z0[i][j] if t <= 0.4 else ys  # paper truncation: example 1 is late
            cd += (ft - y) ** 2 / 4
            bi += (ft - yk) ** 2 / 4
            x1 = z1[i][j] - (0.3 * z1[i][j] + 0.2)  # student f at t=1
            zh = (1 - t) * x1 + t * z1[i][j]
            fh = zh - t * (0.3 * zh + 0.2 * t)
            rf += (x1 - fh) ** 2 / 4
            d_sum += x1
        gan += math.log1p(math.exp(-0.5 * d_sum)) / 2  # softplus(-D(x1))
    got = {k: v.item() for k, v in out.terms.items()}
    assert got == pytest.approx({"cd": cd, "gan": gan, "rf": rf, "bi": bi}, rel=1e-5)
    assert out.total.item() == pytest.approx(cd + 0.2 * gan + 0.3 * rf + 0.4 * bi, rel=1e-5)


def test_truncation_extremes_in_step():
    teacher, student, target = _nets()
    x = _inputs()
    # all late: L_CD is the plain regression of f_theta(z_t, t) onto z0
    out = compute_losses(teacher, student, target, None, x,
                         _cfg(lambda_gan=0.0, lambda_rf=0.0, lambda_bi=0.0, t_trunc=1.0), 1)
    t = x.t.reshape(-1, 1, 1, 1)
    zt = (1 - t) * x.z0 + t * x.z1
    ft = zt - t * (0.3 * zt + 0.2 * t)
    assert out.terms["cd"].item() == pytest.approx((ft - x.z0).pow(2).mean().item(), rel=1e-6)
    # none late (paper rule, t_trunc = 0 and t > 0): differs
    out0 = compute_losses(teacher, student, target, None, x,
                          _cfg(lambda_gan=0.0, lambda_rf=0.0, lambda_bi=0.0, t_trunc=0.0), 1)
    assert out0.terms["cd"].item() != pytest.approx(out.terms["cd"].item(), rel=1e-3)


# --- stop-gradients -----------------------------------------------------------------------------
def _grads(*nets):
    return [None if p.grad is None else p.grad.clone() for n in nets for p in n.parameters()]


def test_gradients_reach_only_the_student():
    teacher, student, target = _nets()
    disc = LinearD()
    out = compute_losses(teacher, student, target, disc, _inputs(), _cfg(), 1)
    assert set(out.terms) == {"cd", "gan", "rf", "bi"}
    out.total.backward()
    assert all(g is None for g in _grads(teacher, target, disc))
    assert all(g is not None and g.abs().sum() > 0 for g in _grads(student))
    assert disc.k.requires_grad  # un-frozen again after the generator term
    assert out.x1 is not None and not out.x1.requires_grad  # what the D update sees: sg(x1)


@pytest.mark.parametrize("term", ["cd", "gan", "rf", "bi"])
def test_each_term_alone_grads_student_only(term):
    teacher, student, target = _nets()
    disc = LinearD()
    out = compute_losses(teacher, student, target, disc, _inputs(), _cfg(), 1)
    out.terms[term].backward()
    assert all(g is None for g in _grads(teacher, target, disc))
    assert student.a.grad is not None and student.a.grad.abs() > 0


def test_rf_gradient_only_through_second_call():
    """Eq. 9: x1 (in z_hat and as the target) is stop-gradient; check against the closed form."""
    teacher, student, target = _nets()
    x = _inputs()
    out = compute_losses(teacher, student, target, None, x, _cfg(lambda_gan=0.0), 1)
    out.terms["rf"].backward()
    got = torch.stack([student.a.grad, student.b.grad])

    def manual(detach: bool):
        a, b = torch.tensor(0.3, requires_grad=True), torch.tensor(0.2, requires_grad=True)
        t = x.t.reshape(-1, 1, 1, 1)
        x1 = x.z1 - (a * x.z1 + b)
        x1c = x1.detach() if detach else x1
        zh = (1 - t) * x1c + t * x.z1
        fh = zh - t * (a * zh + b * t)
        (x1c - fh).pow(2).mean().backward()
        return torch.stack([a.grad, b.grad])

    torch.testing.assert_close(got, manual(detach=True))
    assert not torch.allclose(got, manual(detach=False))  # the check can fail


def test_gan_gradient_through_x1_only():
    """The first x1 gets gradient only through L_GAN: with GAN off, d total / d x1-path = CD+BI."""
    teacher, student, target = _nets()
    x = _inputs()
    disc = LinearD(0.5)
    out = compute_losses(teacher, student, target, disc, x, _cfg(lambda_rf=0.0, lambda_bi=0.0), 1)
    out.terms["gan"].backward()
    # closed form: softplus(-k sum x1), x1 = z1 - a z1 - b -> d/da = sig(-k S) * k * sum(z1) / B
    s = 0.5 * (x.z1 - (0.3 * x.z1 + 0.2)).flatten(1).sum(1)
    sig = torch.sigmoid(-s)
    exp_a = (sig * 0.5 * x.z1.flatten(1).sum(1)).mean()
    exp_b = (sig * 0.5 * x.z1[0].numel()).mean()
    torch.testing.assert_close(torch.stack([student.a.grad, student.b.grad]),
                               torch.stack([exp_a, exp_b]))


# --- warm-up gating -----------------------------------------------------------------------------
def test_warmup_gating_boundaries():
    n = 7
    assert [warmup_active(i, n) for i in (n - 1, n, n + 1)] == [False, True, True]
    cfg = _cfg(warmup_gan=n, warmup_rf=n, warmup_bi=n, lambda_gan=0.2, lambda_rf=0.3)
    assert loss_weights(n - 1, cfg) == {"cd": 1.0, "gan": 0.0, "rf": 0.0, "bi": 0.0}
    assert loss_weights(n, cfg) == {"cd": 1.0, "gan": 0.2, "rf": 0.3, "bi": 0.1}
    assert loss_weights(n + 1, cfg) == loss_weights(n, cfg)
    teacher, student, target = _nets()
    for it, keys in ((n - 1, {"cd"}), (n, {"cd", "gan", "rf", "bi"})):
        out = compute_losses(teacher, student, target, LinearD(), _inputs(), cfg, it)
        assert set(out.terms) == keys
    # zero weight: never computed
    cfg0 = _cfg(lambda_gan=0.0, lambda_bi=0.0)
    out = compute_losses(teacher, student, target, None, _inputs(), cfg0, 10**6)
    assert set(out.terms) == {"cd", "rf"}


def test_default_warmups_are_papers():
    cfg = DistillConfig()
    assert loss_weights(1, cfg) == {"cd": 1.0, "gan": 0.1, "rf": 0.0, "bi": 0.0}
    assert loss_weights(1000, cfg) == {"cd": 1.0, "gan": 0.1, "rf": 0.1, "bi": 0.1}


# --- config validation --------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [dict(lambda_gan=-0.1), dict(lambda_bi=float("inf")),
                                 dict(t_skip=1.5), dict(t_skip=-0.01), dict(batch_size=0),
                                 dict(mixed_precision="fp16"), dict(guidance=0.5),
                                 dict(r1_gamma=-1.0), dict(t_trunc=-0.1), dict(t_trunc=1.5),
                                 dict(target_decay=1.0), dict(warmup_rf=-1),
                                 dict(warmup_bi=True)])
def test_config_rejects_invalid(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        DistillConfig(**bad)


# --- discriminator --------------------------------------------------------------------------------
def test_discriminator_losses_hand():
    d = LinearD(0.5)
    real = torch.ones(2, 1, 1, 2)  # D = 1
    fake = -torch.ones(2, 1, 1, 2)  # D = -1
    total, parts = discriminator_loss(d, real, fake, gamma=1.0)
    sp = math.log1p(math.exp(-1.0))
    assert parts["d_real"].item() == pytest.approx(sp)
    assert parts["d_fake"].item() == pytest.approx(sp)
    assert parts["r1"].item() == pytest.approx(2 * 0.25)  # ||grad||^2 = 2 k^2
    assert total.item() == pytest.approx(2 * sp + 0.5 * 0.5)
    total.backward()
    # d/dk: -sig(-1)*2/1 ... check against autograd of the formula written out
    k = torch.tensor(0.5, requires_grad=True)
    (torch.nn.functional.softplus(-2 * k) + torch.nn.functional.softplus(-2 * k)
     + 0.5 * 2 * k**2).backward()
    torch.testing.assert_close(d.k.grad, k.grad)
    assert generator_loss(d, fake).item() == pytest.approx(math.log1p(math.exp(1.0)))


def test_discriminator_heads():
    torch.manual_seed(0)
    z = torch.randn(3, 4, 8, 8)
    logit = LatentDiscriminator(4, 8, "logit")
    quirk = LatentDiscriminator(4, 8, "sigmoid_softplus")
    quirk.load_state_dict(logit.state_dict())
    torch.testing.assert_close(quirk(z), torch.sigmoid(logit(z)))
    assert logit(z).shape == (3,)
    with pytest.raises(ValueError, match="head"):
        LatentDiscriminator(4, 8, "tanh")


# --- the trainer --------------------------------------------------------------------------------
def _linear_distiller(**kw):
    data = LatentData(torch.randn(32, 1, 1, 2))
    cfg = _cfg(batch_size=4, **kw)
    return Distiller(LinearVelocity(0.5, 1.0), data, cfg, disc=LinearD(), device="cpu")


def test_networks_start_right_and_emas_update():
    d = _linear_distiller(eval_decay=0.5, target_decay=0.9, student_lr=0.1)
    assert d.teacher is not d.student
    for net in (d.student, d.target, d.eval_ema):
        assert net.a.item() == 0.5 and net.b.item() == 1.0
    assert not d.target.a.requires_grad and not d.eval_ema.a.requires_grad
    d.train_step()
    a = d.student.a.item()
    assert a != 0.5 and d.teacher.a.item() == 0.5
    assert d.target.a.item() == pytest.approx(0.9 * 0.5 + 0.1 * a)
    assert d.eval_ema.a.item() == pytest.approx(0.5 * 0.5 + 0.5 * a)
    assert d.step_count == 1


def test_sample_uses_eval_ema():
    d = _linear_distiller(eval_decay=0.0, student_lr=0.1)
    d.train_step()
    z1 = torch.randn(5, 1, 1, 2)
    a, b = d.eval_ema.a.item(), d.eval_ema.b.item()
    torch.testing.assert_close(d.sample(z1, 1), z1 - (a * z1 + b))  # NFE 1 = f(z1, 1)
    assert not torch.allclose(d.sample(z1, 1, net="teacher"), d.sample(z1, 1))


def test_cond_flows_to_every_call_and_cfg_only_for_teacher():
    calls = []

    class Recorder(LinearVelocity):
        def forward(self, z, t, cond=None):
            calls.append((self.tag, z.shape[0], None if cond is None else cond.tolist()))
            return super().forward(z, t, cond)

    teacher = Recorder(0.5, 1.0)
    teacher.tag = "teacher"
    data = LatentData(torch.randn(8, 1, 1, 2), cond=torch.arange(8))
    cfg = _cfg(batch_size=2, guidance=2.0)
    d = Distiller(teacher, data, cfg, null_cond=99, disc=LinearD(), device="cpu")
    d.student.tag, d.target.tag = "student", "target"
    d.train_step()
    conds = {tag: c for tag, _, c in calls}
    assert [(tag, n) for tag, n, _ in calls] == [
        ("teacher", 4), ("target", 4), ("student", 4), ("student", 2)]
    assert conds["teacher"][2:] == [99, 99]  # CFG: conditional + null in one call
    assert 99 not in conds["student"] and 99 not in conds["target"]
    assert conds["target"][:2] == conds["target"][2:] == conds["teacher"][:2]


def test_nan_detection_names_step_and_term(tmp_path):
    d = _linear_distiller(ckpt_every=1, student_lr=0.1)
    d.ckpt_dir = str(tmp_path)
    d.train(2)
    before = [p.clone() for p in d.student.parameters()]
    d.data.latents[:] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"step 3: loss term 'cd'"):
        d.train(1)
    assert all(torch.equal(a, b) for a, b in zip(before, d.student.parameters(), strict=True))
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 2


def test_nan_in_gan_term_is_named():
    class NanD(LinearD):
        def forward(self, z, t=None, cond=None):
            return super().forward(z) * float("nan")

    d = Distiller(LinearVelocity(0.5, 1.0), LatentData(torch.randn(8, 1, 1, 2)),
                  _cfg(batch_size=2), disc=NanD(), device="cpu")
    with pytest.raises(NonFiniteLossError, match=r"step 1: loss term 'gan'"):
        d.train_step()


def test_draws_are_a_function_of_seed_and_step():
    data = LatentData(torch.randn(16, 4, 2, 2))
    cfg = _cfg(batch_size=4)
    a, b = draw_inputs(data, cfg, 5), draw_inputs(data, cfg, 5)
    assert torch.equal(a.z1, b.z1) and torch.equal(a.t, b.t) and torch.equal(a.z0, b.z0)
    assert not torch.equal(draw_inputs(data, cfg, 6).z1, a.z1)
    halves = [draw_inputs(data, cfg, 5, rank=r, world=2) for r in (0, 1)]
    assert torch.equal(torch.cat([h.z1 for h in halves]), a.z1)
    assert torch.equal(torch.cat([h.u_k for h in halves]), a.u_k)


def test_few_steps_lower_cd_on_unet_tiny():
    torch.manual_seed(0)
    teacher = build_velocity_net("unet_tiny", sample_size=8)
    protos = torch.randn(4, 4, 8, 8)  # data with structure: four prototypes
    data = LatentData(protos[torch.arange(64) % 4])
    cfg = _cfg(batch_size=16, lambda_gan=0.0, lambda_rf=0.0, lambda_bi=0.0, student_lr=2e-3,
               t_trunc=0.4)
    d = Distiller(teacher, data, cfg, device="cpu")
    probe = draw_inputs(data, DistillConfig(fidelity=cfg.fidelity, batch_size=32), it=10**6)

    def cd():
        with torch.no_grad():
            return compute_losses(d.teacher, d.student, d.target, None, probe, cfg, 1).terms["cd"]

    before = cd().item()
    hist = d.train(30)
    after = cd().item()
    assert after < 0.9 * before, (before, after)
    assert set(hist[0]) == {"step", "cd", "total"}


def test_bf16_autocast_step_close_to_fp32():
    torch.manual_seed(0)
    teacher = build_velocity_net("unet_tiny", sample_size=8)
    data = LatentData(torch.randn(16, 4, 8, 8))
    logs = {}
    for mp in ("no", "bf16"):
        cfg = _cfg(batch_size=4, disc_width=8, mixed_precision=mp)
        logs[mp] = Distiller(teacher, data, cfg, device="cpu").train_step()
    assert logs["bf16"] != logs["no"]  # autocast did something
    assert logs["bf16"] == pytest.approx(logs["no"], rel=0.05, abs=1e-4)


def test_text_conditional_step_with_cfg_teacher():
    """T2I shape: text embeddings as cond, CFG teacher with a null embedding, latent D."""
    torch.manual_seed(0)
    teacher = build_velocity_net("cond_unet_tiny", sample_size=8)
    emb = torch.randn(8, 3, 32)  # (N, tokens, cross_attention_dim)
    data = LatentData(torch.randn(8, 4, 8, 8), cond=emb)
    cfg = _cfg(batch_size=2, disc_width=8, guidance=1.5)
    d = Distiller(teacher, data, cfg, null_cond=torch.zeros(3, 32), device="cpu")
    logs = d.train_step()
    assert set(logs) >= {"cd", "gan", "rf", "bi", "d_real"}
    assert all(math.isfinite(v) for v in logs.values())
    out = d.sample(torch.randn(2, 4, 8, 8), 2, cond=emb[:2])
    assert out.shape == (2, 4, 8, 8)
