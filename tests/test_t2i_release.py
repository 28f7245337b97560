"""The authors' released SCFlow T2I student (haopt/scflow_t2i) in the T2I evaluation path.

The release is a diffusers ``EMAModel.save_pretrained`` folder (``checkpoint-18000/unet_ema``);
here a tiny random ``UNet2DConditionModel`` saved the same way stands in for it, beside a tiny
SD-1.5-shaped pipeline folder that supplies the VAE, tokenizer and text encoder.
"""

from __future__ import annotations

import pytest
import torch

from scflow.nets import CONFIGS
from scflow.pretrained import (
    SCFLOW_T2I_SUBFOLDER,
    SD_LATENT_SCALE,
    WeightsUnavailableError,
    load_scflow_t2i_student,
    load_sd_pipeline_parts,
)
from scflow.t2i.sampling import render_prompts
from scflow.text import TextEncoder, offline_clip_tokenizer

TEXT_DIM = 32


def _cond_unet(seed: int):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    _, kw = CONFIGS["cond_unet_tiny"]
    return UNet2DConditionModel(**kw, sample_size=8, in_channels=4, out_channels=4).eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from diffusers import AutoencoderKL
    from diffusers.training_utils import EMAModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("release")
    pipe = root / "2rf"
    _cond_unet(1).save_pretrained(pipe / "unet")
    torch.manual_seed(0)
    AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                  down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16),
                  layers_per_block=1, norm_num_groups=8, sample_size=16).save_pretrained(pipe / "vae")
    torch.manual_seed(2)
    CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=TEXT_DIM, intermediate_size=2 * TEXT_DIM,
        num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)).save_pretrained(pipe / "text_encoder")
    offline_clip_tokenizer().save_pretrained(pipe / "tokenizer")
    student = _cond_unet(3)
    ema = EMAModel(student.parameters(), model_cls=type(student), model_config=student.config)
    ema.save_pretrained(str(root / "scflow_t2i" / SCFLOW_T2I_SUBFOLDER))  # as the authors save it
    return pipe, root / "scflow_t2i", student


def test_released_student_replaces_the_pipeline_unet(folders):
    pipe, release, student = folders
    parts = load_sd_pipeline_parts(str(pipe), student=str(release))
    net = parts["unet"]
    assert (net.arch, net.sign, net.time_scale) == ("scflow_t2i", -1.0, 1000.0)
    text = TextEncoder(parts["tokenizer"], parts["text_encoder"])
    z, t = torch.randn(2, 4, 8, 8), torch.tensor([1.0, 0.4])
    emb = text(["a photo of a cat", ""])
    with torch.no_grad():  # InstaFlow convention: v(z, t) = -u(z, 1000 t)
        raw = student(z, 1000 * t, encoder_hidden_states=emb).sample
        torch.testing.assert_close(net(z, t, emb), -raw)
        pipe_unet = load_sd_pipeline_parts(str(pipe))["unet"]
        assert (pipe_unet(z, t, emb) - net(z, t, emb)).abs().max() > 1e-3  # not the 2-RF UNet
    # the evaluation path: one-step images per prompt through the VAE decode
    idx, images = render_prompts(net, ["a cat", "a dog", "a car"], text, (4, 8, 8), nfe=1, seed=0,
                                 decode=lambda x: parts["vae"].decode(x / SD_LATENT_SCALE).sample)
    assert idx == [0, 1, 2] and images.shape == (3, 3, 16, 16) and torch.isfinite(images).all()


def test_missing_release_fails_fast_naming_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as err:
        load_scflow_t2i_student()
    msg = str(err.value)
    assert "hf download haopt/scflow_t2i --include 'checkpoint-18000/unet_ema/*'" in msg
    assert "`student`" in msg
