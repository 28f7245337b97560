"""LFM's ADM teacher -> diffusers UNet2DModel, checked against openai's guided-diffusion UNet.

The reference network is guided-diffusion's ``UNetModel`` (PyPI ``guided-diffusion-sdk``, a dev
dependency), the same class LFM's ``models/guided_diffusion/unet.py`` copies (LFM only swaps the
forward's argument order to ``model(t, x)``). Its weights are random and every tensor is
perturbed, so zero-initialised layers (output convs, attention projections) are exercised too.
"""

from __future__ import annotations

import time
import warnings

import pytest
import torch

from scflow import adm, pretrained
from scflow.adm import (
    LFM_CELEBA_F8_ADM,
    ADMConfig,
    adm_key_map,
    adm_velocity_net,
    build_adm_unet,
    convert_adm_state_dict,
    unet2d_config,
)
from scflow.nets import CONFIGS
from scflow.pretrained import WeightsUnavailableError
from scflow.samplers import euler_sample

with warnings.catch_warnings():  # its nn.py uses the deprecated torch.cuda.amp decorators
    warnings.simplefilter("ignore")
    gd_unet = pytest.importorskip("guided_diffusion.unet")

TINY = ADMConfig(image_size=8, model_channels=32, num_res_blocks=1, attention_resolutions=(2,),
                 channel_mult=(1, 2), num_heads=2)


def reference_adm(cfg: ADMConfig, seed: int = 0, scale: float = 0.05) -> torch.nn.Module:
    """guided-diffusion's UNetModel(cfg) with every parameter drawn at random (no zero layer)."""
    torch.manual_seed(seed)
    model = gd_unet.UNetModel(**cfg.kwargs()).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model


def inputs(cfg: ADMConfig, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cfg.in_channels, cfg.image_size, cfg.image_size, generator=g)
    t = torch.rand(n, generator=g)
    t[0] = 1.0  # the noise end, where every sampler starts
    return z, t


@pytest.mark.parametrize("cfg", [
    TINY,
    # new attention order, fixed head width, plain (additive) time embedding, attention at the
    # top level and three levels: the other ADM switches UNet2DModel can express
    ADMConfig(image_size=8, model_channels=32, num_res_blocks=2, attention_resolutions=(1, 4),
              channel_mult=(1, 1, 2), num_head_channels=32, use_new_attention_order=True,
              use_scale_shift_norm=False),
], ids=["tiny", "variants"])
def test_converted_forward_equals_reference_adm(cfg):
    ref = reference_adm(cfg)
    net = adm_velocity_net(ref.state_dict(), cfg)
    z, t = inputs(cfg, 4)
    with torch.no_grad():
        want, got = ref(z, t), net(z, t)
    assert want.abs().mean() > 1e-2  # a non-trivial output, not two zeros
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_lfm_celeba_shape_forward_equals_reference_adm():
    """LFM's celeba_f8_adm shape (153M parameters): 4x32x32 latents, raw t in [0, 1]."""
    ref = reference_adm(LFM_CELEBA_F8_ADM, scale=0.02)
    sd = {f"module.{k}": v for k, v in ref.state_dict().items()}  # as LFM's DDP saves it
    net = adm_velocity_net(sd)
    z, t = inputs(LFM_CELEBA_F8_ADM, 2)
    with torch.no_grad():
        want, got = ref(z, t), net(z, t)
    assert want.abs().mean() > 1e-2
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    # the named config a teacher of this architecture is trained with is the same network
    assert unet2d_config(LFM_CELEBA_F8_ADM) == {
        **CONFIGS["unet_lfm_celeba"][1], "sample_size": 32, "in_channels": 4, "out_channels": 4,
        "norm_eps": 1e-5, "flip_sin_to_cos": True, "freq_shift": 0, "downsample_padding": 1}


def test_lfm_attention_only_at_the_4x4_level():
    """LFM passes attn_resolutions 16 8 as downsampling rates: only rate 8 exists (4x4)."""
    keys = adm_key_map(LFM_CELEBA_F8_ADM)
    attn = sorted({k.split(".qkv")[0] for k in keys if ".qkv." in k})
    assert attn == ["input_blocks.10.1", "input_blocks.11.1", "middle_block.1",
                    "output_blocks.0.1", "output_blocks.1.1", "output_blocks.2.1"]


def test_euler_matches_lfm_sampling_convention():
    """LFM integrates dz/dt = model(t, z) from t = 1 (noise) to 0 with the raw t; our Euler on
    the converted net (time_scale 1, sign +1) must give the same sample at NFE 25."""
    ref = reference_adm(TINY, scale=0.2)  # large enough weights for the output to depend on t
    net = adm_velocity_net(ref.state_dict(), TINY)
    z1, _ = inputs(TINY, 3)
    nfe = 25

    def lfm_euler(model_t_first, x, n):  # fixed-step ODE solve on [1, 0], as odeint's euler
        ts = torch.linspace(1.0, 0.0, n + 1)
        for a, b in zip(ts[:-1], ts[1:], strict=True):
            x = x + (b - a) * model_t_first(a.expand(x.shape[0]), x)
        return x

    with torch.no_grad():
        want = lfm_euler(lambda t, x: ref(x, t), z1, nfe)
    got = euler_sample(net, z1, nfe)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    # the mapping matters: the opposite sign, or DDPM-style 1000 t (this project's default for
    # its own nets), moves the sample elsewhere (relative to how far it moved from z1)
    moved = (want - z1).norm()
    for attr, wrong in (("sign", -1.0), ("time_scale", 1000.0)):
        bad = adm_velocity_net(ref.state_dict(), TINY)
        setattr(bad, attr, wrong)
        assert (euler_sample(bad, z1, nfe) - want).norm() > 0.2 * moved, attr


def test_refuses_missing_unexpected_and_misshaped_tensors():
    sd = reference_adm(TINY).state_dict()
    missing = dict(sd)
    missing.pop("middle_block.1.qkv.weight")
    with pytest.raises(ValueError, match=r"missing: \['middle_block.1.qkv.weight'\]"):
        convert_adm_state_dict(missing, TINY)
    extra = {**sd, "label_emb.weight": torch.zeros(3, 128)}  # a class-conditional checkpoint
    with pytest.raises(ValueError, match=r"unexpected: \['label_emb.weight'\]"):
        convert_adm_state_dict(extra, TINY)
    other = ADMConfig(**{**TINY.kwargs(), "num_res_blocks": 2})  # another config's layout
    with pytest.raises(ValueError, match="input_blocks.4.0.in_layers.0.weight"):
        convert_adm_state_dict(sd, other)
    wide = reference_adm(ADMConfig(**{**TINY.kwargs(), "model_channels": 64})).state_dict()
    with pytest.raises(ValueError, match=r"conv_in.weight \(from ADM input_blocks.0.0.weight\)"
                                         r": got \(64, 4, 3, 3\), expected \(32, 4, 3, 3\)"):
        build_adm_unet(wide, TINY)


def test_refuses_adm_options_unet2d_cannot_express():
    with pytest.raises(NotImplementedError, match="resblock_updown"):
        unet2d_config(ADMConfig(**{**TINY.kwargs(), "resblock_updown": True}))
    # 2 heads on 32 channels (top) vs 2 heads on 64: head widths 16 and 32
    mixed = ADMConfig(**{**TINY.kwargs(), "attention_resolutions": (1, 2)})
    with pytest.raises(NotImplementedError, match=r"head widths differ between blocks \[16, 32\]"):
        unet2d_config(mixed)


# --- the celebahq256 preset's teacher hook -------------------------------------------------------
def test_missing_checkpoint_fails_fast_with_the_download_command(tmp_path):
    from scflow.repro.experiment import prepare
    from scflow.repro.presets import preset_values

    p = {**preset_values("celebahq256"), "device": "cpu",
         "data_dir": str(tmp_path / "no_images"), "teacher_checkpoint": str(tmp_path / "m.pth")}
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        prepare(p, progress=False)
    assert time.perf_counter() - start < 5
    msg = str(err.value)
    assert "gdown" in msg and pretrained.LFM_MODEL_480_URL in msg and str(tmp_path / "m.pth") in msg
    assert preset_values("celebahq256")["teacher_checkpoint"] == "weights/lfm/model_480.pth"
    assert preset_values("mini")["teacher_checkpoint"] == ""


def test_get_teacher_converts_the_checkpoint(tmp_path, monkeypatch):
    """teacher_checkpoint set: the teacher IS the converted file (no training), cached by file."""
    from dataclasses import replace

    from scflow.repro.configs import teacher_config
    from scflow.repro.presets import preset_values
    from scflow.teacher import get_teacher, teacher_cache_config

    monkeypatch.setenv("SCFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(adm, "LFM_CELEBA_F8_ADM", TINY)  # a tiny stand-in for model_480.pth
    ref = reference_adm(TINY)
    ckpt = tmp_path / "model_480.pth"
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, ckpt)
    cfg = teacher_config({**preset_values("smoke"), "teacher_checkpoint": str(ckpt)})
    space = "stabilityai/sd-vae-ft-mse"  # the latent space's key
    latents = torch.randn(4, 4, 8, 8)
    teacher, _, hit = get_teacher(cfg, latents, None, space)
    z, t = inputs(TINY, 2)
    with torch.no_grad():
        torch.testing.assert_close(teacher(z, t), ref(z, t), rtol=1e-4, atol=1e-5)
    assert not hit and get_teacher(cfg, latents, None, space)[2]  # second call: from the cache
    trained = teacher_config(preset_values("smoke"))
    assert teacher_cache_config(cfg, space) != teacher_cache_config(trained, space)
    with pytest.raises(ValueError, match=r"latents \(4, 8, 8\)"):
        get_teacher(replace(cfg, seed=1), torch.randn(4, 4, 16, 16), None, space)
