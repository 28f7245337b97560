"""The one velocity signature over several diffusers classes, and strict checkpoint loading."""

import pytest
import torch

from scflow.flow import f_theta
from scflow.nets import VelocityNet, build_velocity_net


@pytest.mark.parametrize("arch,num_classes,cond", [
    ("unet_tiny", 0, None),
    ("unet_tiny", 10, torch.tensor([0, 3, 9, 10])),
    ("dit_tiny", 0, None),
    ("dit_tiny", 10, torch.tensor([1, 2, 3, 10])),
    ("cond_unet_tiny", 0, torch.randn(4, 5, 32)),
])
def test_one_signature_for_every_architecture(arch, num_classes, cond):
    net = build_velocity_net(arch, sample_size=8, num_classes=num_classes)
    z, t = torch.randn(4, 4, 8, 8), torch.rand(4)
    v = net(z, t, cond)
    assert v.shape == z.shape and torch.isfinite(v).all()
    # scalar-like time is broadcast to the batch
    assert net(z, torch.tensor(0.5), cond).shape == z.shape


def test_class_conditional_net_uses_label_and_null():
    net = build_velocity_net("unet_tiny", sample_size=8, num_classes=3)
    assert net.null_cond == 3
    z, t = torch.randn(2, 4, 8, 8), torch.rand(2)
    # no condition means the null class
    torch.testing.assert_close(net(z, t), net(z, t, torch.tensor([3, 3])))
    assert not torch.allclose(net(z, t, torch.tensor([0, 0])), net(z, t, torch.tensor([1, 1])))


def test_text_net_requires_condition():
    net = build_velocity_net("cond_unet_tiny", sample_size=8)
    with pytest.raises(ValueError, match="cond"):
        net(torch.randn(1, 4, 8, 8), torch.rand(1))


def test_unknown_arch_rejected():
    with pytest.raises(ValueError, match="unet_tiny"):
        build_velocity_net("unet_huge", sample_size=8)


def test_sign_and_time_scale_convention():
    """InstaFlow convention: sign -1, t*1000, so f(z, t) = z + t u(z, 1000 t)."""

    class U(torch.nn.Module):  # stand-in with the UNet2DModel output interface
        config = {}

        def forward(self, z, ts, class_labels=None):
            return type("O", (), {"sample": z * 0 + ts.view(-1, 1, 1, 1) / 1000 + 2})()

    u = U()
    net = VelocityNet(u, time_scale=1000, sign=-1)
    net.kind = "UNet2DModel"
    z, t = torch.randn(3, 1, 2, 2), torch.tensor([0.2, 0.5, 1.0])
    u_val = t.view(-1, 1, 1, 1) + 2
    torch.testing.assert_close(net(z, t), -u_val.expand_as(z))
    torch.testing.assert_close(f_theta(net, z, t), z + t.view(-1, 1, 1, 1) * u_val)


def test_save_load_roundtrip_and_strict_refusal(tmp_path):
    net = build_velocity_net("unet_tiny", sample_size=8, num_classes=2)
    net.save(tmp_path / "n")
    back = VelocityNet.load(tmp_path / "n", expected=net.wrapper_config())
    z, t = torch.randn(2, 4, 8, 8), torch.rand(2)
    torch.testing.assert_close(back(z, t), net(z, t), atol=1e-5, rtol=1e-5)
    other = build_velocity_net("unet_tiny", sample_size=8, num_classes=0)
    with pytest.raises(ValueError, match="num_classes"):
        VelocityNet.load(tmp_path / "n", expected=other.wrapper_config())
    with pytest.raises(FileNotFoundError):
        VelocityNet.load(tmp_path / "missing")
