"""The real-scale loading code (scflow.pretrained, scflow.text) on tiny random models of the SAME classes.

Real weights cannot be downloaded here, so each test saves a tiny diffusers / transformers model
with ``save_pretrained`` and loads it back through the project's loaders, exactly as a full
SD 1.5 / InstaFlow folder would be.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from scflow import pretrained
from scflow.flow import f_theta
from scflow.nets import CONFIGS, VelocityNet, build_velocity_net
from scflow.pretrained import (
    SD_LATENT_SCALE,
    WeightsUnavailableError,
    load_instaflow_unet,
    load_lfm_state_dict,
    load_sd_pipeline_parts,
    load_vae,
    load_velocity_checkpoint,
    resolve_pretrained,
)
from scflow.samplers import euler_sample
from scflow.text import TextEncoder, check_text_width, offline_clip_tokenizer

TEXT_DIM = 32


# --- fixtures: tiny models of the real classes --------------------------------------------------
def _tiny_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2,
                         block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=8,
                         sample_size=16).eval()


def _tiny_cond_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(1)
    _, kw = CONFIGS["cond_unet_tiny"]
    return UNet2DConditionModel(**kw, sample_size=8, in_channels=4, out_channels=4).eval()


def _tiny_text_model(width: int = TEXT_DIM):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(2)
    cfg = CLIPTextConfig(vocab_size=49408, hidden_size=width, intermediate_size=2 * width,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    return CLIPTextModel(cfg).eval()


@pytest.fixture(scope="module")
def tokenizer():
    return offline_clip_tokenizer()


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory, tokenizer):
    """An SD-1.5-shaped pipeline folder holding only what load_sd_pipeline_parts reads."""
    root = tmp_path_factory.mktemp("sd_pipeline")
    parts = {"unet": _tiny_cond_unet(), "vae": _tiny_vae(), "text_encoder": _tiny_text_model()}
    for name, model in parts.items():
        model.save_pretrained(root / name)
    tokenizer.save_pretrained(root / "tokenizer")
    return SimpleNamespace(root=root, **parts)


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    """HF_HOME -> an empty folder, offline: nothing can come from the network or a real cache."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf_home"


# --- VAE -----------------------------------------------------------------------------------------
def test_vae_roundtrip_shapes_and_scale(tmp_path):
    vae = _tiny_vae()
    vae.save_pretrained(tmp_path / "vae")
    loaded = load_vae(str(tmp_path / "vae"))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z = SD_LATENT_SCALE * loaded.encode(x).latent_dist.mode()
        assert z.shape == (2, 4, 8, 8)
        out = loaded.decode(z / SD_LATENT_SCALE).sample
        assert out.shape == x.shape
        ref = vae.decode(vae.encode(x).latent_dist.mode()).sample
    torch.testing.assert_close(out, ref)  # same weights came back
    assert SD_LATENT_SCALE == 0.18215
    assert loaded.config.scaling_factor == pytest.approx(SD_LATENT_SCALE)


# --- the InstaFlow convention ---------------------------------------------------------------------
class UNet2DConditionModel(nn.Module):
    """Test double with the diffusers name (VelocityNet dispatches on it) and a known output
    ``u(z, ts) = sin(z) * ts / 1000 + 0.1 * cond.mean()``: InstaFlow's noise -> data velocity."""

    def forward(self, z, ts, encoder_hidden_states):
        ts = ts.reshape(-1, 1, 1, 1)
        return SimpleNamespace(sample=torch.sin(z) * ts / 1000 + 0.1 * encoder_hidden_states.mean())


def _u(z, ts, cond):
    return UNet2DConditionModel()(z, torch.as_tensor(ts).expand(z.shape[0]), cond).sample


def test_instaflow_sign_and_time_scale():
    net = VelocityNet(UNet2DConditionModel(), time_scale=1000, sign=-1)
    z, cond = torch.randn(3, 4, 8, 8), torch.randn(3, 5, TEXT_DIM)
    t = torch.tensor([1.0, 0.5, 0.1])
    assert torch.allclose(net(z, t, cond), -_u(z, 1000 * t, cond))
    # Eq. 5 in the paper's convention == InstaFlow's one-step map z + t u(z, 1000 t)
    expected = z + t.reshape(-1, 1, 1, 1) * _u(z, 1000 * t, cond)
    assert torch.allclose(f_theta(net, z, t, cond), expected)

    # a net written directly in the paper's convention (sign +1, t unscaled) gives the same f
    class Paper(nn.Module):
        def forward(self, z, t, cond):
            return -_u(z, 1000 * t, cond)

    assert torch.allclose(f_theta(Paper(), z, t, cond), expected)
    # and the opposite sign would not (guards against a sign flip going unnoticed)
    wrong = VelocityNet(UNet2DConditionModel(), time_scale=1000, sign=1)
    assert not torch.allclose(f_theta(wrong, z, t, cond), expected)


def test_instaflow_euler_matches_instaflow_loop():
    """Our Euler (t: 1 -> 0, z -= dt v) == InstaFlow's loop (ts = (1 - i/N) 1000, z += dt u)."""
    net = VelocityNet(UNet2DConditionModel(), time_scale=1000, sign=-1)
    z1, cond = torch.randn(2, 4, 8, 8), torch.randn(2, 5, TEXT_DIM)
    for n in (1, 4):
        z = z1.clone()
        for i in range(n):
            z = z + (1 / n) * _u(z, (1 - i / n) * 1000, cond)
        torch.testing.assert_close(euler_sample(net, z1, n, cond), z)


# --- SD pipeline folder -------------------------------------------------------------------------
def test_sd_pipeline_parts_roundtrip(sd_folder, tokenizer):
    parts = load_sd_pipeline_parts(str(sd_folder.root))
    unet = parts["unet"]
    assert isinstance(unet, VelocityNet)
    assert (unet.sign, unet.time_scale) == (-1.0, 1000.0)
    enc = TextEncoder(parts["tokenizer"], parts["text_encoder"])
    ref = TextEncoder(tokenizer, sd_folder.text_encoder)
    caps = ["a photo of a cat", ""]
    emb = enc(caps)
    assert emb.shape == (2, 77, TEXT_DIM)
    torch.testing.assert_close(emb, ref(caps))
    z, t = torch.randn(2, 4, 8, 8), torch.tensor([0.9, 0.3])
    with torch.no_grad():
        raw = sd_folder.unet(z, 1000 * t, encoder_hidden_states=emb).sample
        torch.testing.assert_close(unet(z, t, emb), -raw)
        x = parts["vae"].decode(z / SD_LATENT_SCALE).sample
    assert x.shape == (2, 3, 16, 16)


def test_pipeline_from_hf_cache_offline(sd_folder, empty_hf_cache):
    """A hub id found in the (offline) HF cache layout resolves to its snapshot subfolder."""
    repo = empty_hf_cache / "hub" / "models--someone--tiny-sd"
    snap = repo / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    (snap / "unet").symlink_to(sd_folder.root / "unet", target_is_directory=True)
    found = resolve_pretrained("someone/tiny-sd", what="unet", subfolder="unet")
    assert found == snap / "unet"
    assert isinstance(load_instaflow_unet("someone/tiny-sd"), VelocityNet)


def test_text_width_mismatch_refused(sd_folder, tokenizer):
    with pytest.raises(ValueError, match=r"48.*32"):
        check_text_width(48, load_instaflow_unet(str(sd_folder.root)))
    bad = sd_folder.root.parent / "sd_bad_text"
    for name in ("unet", "vae", "tokenizer"):
        (bad / name).parent.mkdir(parents=True, exist_ok=True)
        (bad / name).symlink_to(sd_folder.root / name, target_is_directory=True)
    _tiny_text_model(width=48).save_pretrained(bad / "text_encoder")
    with pytest.raises(ValueError, match="text embedding width 48 != UNet cross_attention_dim 32"):
        load_sd_pipeline_parts(str(bad))


# --- missing weights --------------------------------------------------------------------------
@pytest.mark.parametrize("allow_download", [False, True])
def test_missing_hub_weights_fail_fast_with_hint(empty_hf_cache, allow_download):
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        load_instaflow_unet(pretrained.INSTAFLOW_09B_ID, allow_download=allow_download)
    assert time.perf_counter() - start < 5
    msg = str(err.value)
    assert f"hf download {pretrained.INSTAFLOW_09B_ID}" in msg and "--local-dir" in msg
    assert "unet" in msg and "`teacher`" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_missing_local_files_named(tmp_path):
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{}")
    with pytest.raises(WeightsUnavailableError, match=r"\*\.safetensors"):
        load_vae(str(tmp_path / "vae"))
    with pytest.raises(WeightsUnavailableError, match="neither an existing directory"):
        load_vae(str(tmp_path / "no" / "such" / "dir"))


# --- strict generic checkpoints -------------------------------------------------------------------
def _tiny_unet_folder(path: Path) -> tuple[VelocityNet, dict]:
    net = build_velocity_net("unet_tiny", sample_size=8)
    net.model.save_pretrained(path)
    arch = {**CONFIGS["unet_tiny"][1], "sample_size": 8, "in_channels": 4, "out_channels": 4}
    return net, arch


def test_velocity_checkpoint_strict(tmp_path):
    net, arch = _tiny_unet_folder(tmp_path / "ckpt")
    loaded = load_velocity_checkpoint(tmp_path / "ckpt", arch)
    z, t = torch.randn(2, 4, 8, 8), torch.rand(2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(z, t), net(z, t))
    with pytest.raises(ValueError, match="layers_per_block: checkpoint 1 != expected 2"):
        load_velocity_checkpoint(tmp_path / "ckpt", {**arch, "layers_per_block": 2})
    with pytest.raises(ValueError, match="attention_head_dim"):
        load_velocity_checkpoint(tmp_path / "ckpt", {**arch, "attention_head_dim": 4})
    with pytest.raises(ValueError, match="does not take"):
        load_velocity_checkpoint(tmp_path / "ckpt", {**arch, "heads": 4})


def test_velocity_checkpoint_weights_must_fit(tmp_path):
    from safetensors.torch import load_file, save_file

    _, arch = _tiny_unet_folder(tmp_path / "ckpt")
    wfile = tmp_path / "ckpt" / "diffusion_pytorch_model.safetensors"
    sd = load_file(wfile)
    sd.pop("conv_out.bias")
    save_file(sd, wfile)
    with pytest.raises(ValueError, match="conv_out.bias"):
        load_velocity_checkpoint(tmp_path / "ckpt", arch)


# --- LFM raw state dict ---------------------------------------------------------------------------
def test_lfm_state_dict_prefix_and_missing(tmp_path):
    torch.save({"module.input_blocks.0.weight": torch.ones(2),
                "module.out.bias": torch.zeros(1)}, tmp_path / "model_480.pth")
    sd = load_lfm_state_dict(tmp_path / "model_480.pth")
    assert sorted(sd) == ["input_blocks.0.weight", "out.bias"]
    with pytest.raises(WeightsUnavailableError, match="model_480.pth"):
        load_lfm_state_dict(tmp_path / "missing" / "model_480.pth")


# --- text encoder ------------------------------------------------------------------------------
def _open_clip_simple_tokenizer():
    """open_clip's tokenizer module loaded on its own (importing open_clip itself takes ~10 s)."""
    spec = importlib.util.find_spec("open_clip")
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizer.py"
    mod_spec = importlib.util.spec_from_file_location("_oc_tokenizer", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod.SimpleTokenizer()


def test_offline_tokenizer_is_real_clip(tokenizer, tmp_path):
    # ids of openai/clip-vit-large-patch14's tokenizer for this caption (bos ... eos)
    assert tokenizer("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
    st = _open_clip_simple_tokenizer()
    for s in ["An astronaut riding a HORSE, 4k!!", "naïve café 123 don't", ""]:
        assert tokenizer(s)["input_ids"] == [st.sot_token_id, *st.encode(s), st.eot_token_id]
    assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77
    tokenizer.save_pretrained(tmp_path / "tok")
    from transformers import CLIPTokenizer

    again = CLIPTokenizer.from_pretrained(tmp_path / "tok")
    assert again("a photo of a dog")["input_ids"] == tokenizer("a photo of a dog")["input_ids"]


def test_text_encoder_cache_null_and_truncation(tokenizer):
    enc = TextEncoder(tokenizer, _tiny_text_model())
    calls = []
    enc.model.register_forward_hook(lambda m, i, o: calls.append(i))
    a = enc(["a cat", "a dog", "a cat"])
    assert len(calls) == 1 and torch.equal(a[0], a[2]) and not torch.equal(a[0], a[1])
    b = enc(["a dog"])
    assert len(calls) == 1 and torch.equal(b[0], a[1])  # served from the cache
    assert torch.equal(enc.null(3)[2], enc([""])[0]) and enc.null(3).shape == (3, 77, TEXT_DIM)
    long1, long2 = "cat " * 100, "dog " * 100
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        enc([long1, "short"])
        enc([long2])
    assert sum("truncated" in str(x.message) for x in w) == 1
    assert enc.n_truncated == 2
    with pytest.raises(TypeError):
        enc("a single string")


def test_tiny_clip_text_encoder_width_check():
    from scflow.text import tiny_clip_text_encoder

    enc = tiny_clip_text_encoder(hidden_size=TEXT_DIM, num_layers=1)
    assert enc(["hello"]).shape == (1, 77, TEXT_DIM)
    check_text_width(enc.width, _tiny_cond_unet())  # cross_attention_dim 32: accepted
    with pytest.raises(ValueError, match="32 != UNet cross_attention_dim 64"):
        check_text_width(enc.width, 64)


def test_network_only_when_allowed_and_online(empty_hf_cache, monkeypatch):
    import huggingface_hub

    real, calls = huggingface_hub.snapshot_download, []

    def spy(*args, **kwargs):
        if not kwargs.get("local_files_only"):
            calls.append(kwargs.get("etag_timeout"))
            raise OSError("no network in tests")
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", spy)
    for allow in (False, True):  # HF_HUB_OFFLINE=1 wins over allow_download
        with pytest.raises(WeightsUnavailableError):
            resolve_pretrained("someone/absent", what="x", allow_download=allow)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(WeightsUnavailableError):
        resolve_pretrained("someone/absent", what="x")
    assert calls == []
    with pytest.raises(WeightsUnavailableError, match="download failed.*no network"):
        resolve_pretrained("someone/absent", what="x", allow_download=True, timeout_s=3)
    assert calls == [3]
