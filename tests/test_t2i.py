"""Text-to-image (scflow.t2i): real-scale path on a tiny random SD pipeline, captions, bad input,
the T2I discriminator, prompt rendering and timing; slow: two-process sharding, notebook 08.

The InstaFlow adapter's sign / time scaling is tested in test_realscale.py and the CFG
arithmetic in test_flow.py; they are not repeated here.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from scflow.distill import DistillConfig, LatentData
from scflow.fidelity import make_fidelity
from scflow.nets import CONFIGS, build_velocity_net
from scflow.pretrained import WeightsUnavailableError, load_sd_pipeline_parts
from scflow.repro.params import ParameterError, resolve_notebook_params
from scflow.t2i.captions import (
    DIGIT_WORDS,
    digit_captions,
    eval_digit_prompts,
    load_coco_captions,
)
from scflow.t2i.discriminator import UNetEncoderDiscriminator
from scflow.t2i.sampling import index_noise, render_prompts, seconds_per_image, shard_indices
from scflow.t2i.scores import prompt_accuracy, resolve_open_clip_weights
from scflow.t2i.teacher import build_text_teacher, reflow, train_text_flow
from scflow.teacher import drop_condition as drop_caption
from scflow.text import TextEncoder, offline_clip_tokenizer
from scflow.trainer import Distiller

WORKER = Path(__file__).with_name("t2i_shard_worker.py")
WIDTH = 32  # cond_unet_tiny's cross_attention_dim


# --- a tiny random SD-1.5-shaped pipeline, saved and loaded through the real loader ---------------
@pytest.fixture(scope="module")
def sd_parts(tmp_path_factory):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("sd15")
    torch.manual_seed(0)
    _, kw = CONFIGS["cond_unet_tiny"]
    UNet2DConditionModel(**kw, sample_size=8, in_channels=4, out_channels=4).save_pretrained(
        root / "unet")
    AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                  down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16),
                  layers_per_block=1, norm_num_groups=8, sample_size=16).save_pretrained(root / "vae")
    tok = offline_clip_tokenizer(model_max_length=16)
    tok.save_pretrained(root / "tokenizer")
    CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=WIDTH, intermediate_size=2 * WIDTH, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=77, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)).save_pretrained(
        root / "text_encoder")
    parts = load_sd_pipeline_parts(str(root))
    parts["text"] = TextEncoder(parts["tokenizer"], parts["text_encoder"])
    return parts


def test_pipeline_distill_step_with_cfg_teacher_and_t2i_disc_then_sample(sd_parts):
    """Real-scale path: loaded InstaFlow-convention UNet as teacher with CFG, the UNet-encoder
    discriminator, one update of Algorithm 1 (all four terms), then prompts -> decoded images."""
    unet, vae, text = sd_parts["unet"], sd_parts["vae"], sd_parts["text"]
    assert unet.sign == -1.0 and unet.time_scale == 1000.0
    captions = ["a red car", "two dogs on grass", "", "a red car"]
    cond = text(captions)
    data = LatentData(torch.randn(4, 4, 8, 8), cond)
    fidelity = make_fidelity("code", t2i=True, student_lr=1e-3, disc_lr=1e-3)
    cfg = DistillConfig(fidelity=fidelity, batch_size=4, guidance=1.5, t_trunc=0.1, warmup_gan=0,
                        warmup_rf=0, warmup_bi=0)
    disc = UNetEncoderDiscriminator(unet, fidelity.d_head)
    teacher_before = {k: v.clone() for k, v in unet.state_dict().items()}
    d = Distiller(unet, data, cfg, null_cond=text([""])[0], disc=disc, device="cpu")
    disc_before = [p.clone() for p in d.disc.parameters()]
    student_before = [p.clone() for p in d.student.parameters()]
    logs = d.train_step()
    assert {"cd", "gan", "rf", "bi", "d_real", "d_fake", "r1"} <= set(logs)
    assert all(math.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(student_before, d.student.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, d.disc.parameters(), strict=True))
    assert all(torch.equal(v, unet.state_dict()[k]) for k, v in teacher_before.items())
    # sample: every prompt rendered once, decoded by the pipeline's VAE
    decode = lambda z: vae.decode(z / 0.18215).sample  # noqa: E731
    idx, images = render_prompts(d.eval_ema, captions, text, (4, 8, 8), 1, seed=0,
                                 batch_size=3, decode=decode)
    assert idx == [0, 1, 2, 3] and images.shape == (4, 3, 16, 16)
    assert torch.isfinite(images).all()


# --- captions -------------------------------------------------------------------------------------
def test_digit_captions_templates_and_eval_prompts():
    caps = digit_captions([7] * 200, seed=1)
    assert {c for c in caps} >= {"a handwritten digit seven", "the number 7"}
    assert all("seven" in c or "7" in c for c in caps)
    assert digit_captions([3, 1], n_templates=1) == ["a handwritten digit three",
                                                     "a handwritten digit one"]
    prompts, digits = eval_digit_prompts(25)
    assert digits[:10] == list(range(10)) and len(prompts) == 25
    assert all(DIGIT_WORDS[d] in p or str(d) in p for p, d in zip(prompts, digits, strict=True))
    with pytest.raises(ValueError, match="empty"):
        digit_captions([])
    with pytest.raises(ValueError):
        eval_digit_prompts(0)


def _coco(path, anns):
    path.write_text(json.dumps({"images": [], "annotations": anns}))
    return path


def test_coco_captions_first_n_one_per_image(tmp_path):
    anns = [{"image_id": 9, "id": 1, "caption": "A cat  on a mat.\n"},
            {"image_id": 4, "id": 2, "caption": "Two dogs."},
            {"image_id": 9, "id": 3, "caption": "second caption of the cat image"},
            {"image_id": 5, "id": 4, "caption": "A red bus."}]
    f = _coco(tmp_path / "captions_val2014.json", anns)
    assert load_coco_captions(f) == ["A cat on a mat.", "Two dogs.", "A red bus."]
    assert load_coco_captions(f, n=2) == ["A cat on a mat.", "Two dogs."]
    with pytest.raises(ValueError, match="fewer than n=4"):
        load_coco_captions(f, n=4)


def test_coco_captions_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="captions_val2014"):
        load_coco_captions(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="no captions"):
        load_coco_captions(_coco(tmp_path / "empty.json", []))
    (tmp_path / "other.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="not a COCO caption file"):
        load_coco_captions(tmp_path / "other.json")


# --- bad input ------------------------------------------------------------------------------------
def test_empty_prompt_list_refused():
    with pytest.raises(ValueError, match="empty prompt list"):
        render_prompts(lambda z, t, c: z, [], lambda c: torch.zeros(0), (4, 8, 8), 1, seed=0)


@pytest.mark.parametrize("g", [0.5, float("nan")])
def test_guidance_below_one_or_nan_rejected(g):
    with pytest.raises(ValueError, match="guidance"):
        DistillConfig(guidance=g)
    with pytest.raises(ParameterError, match="t2i_guidance"):
        resolve_notebook_params("08_text_to_image", {"preset": "smoke", "t2i_guidance": g})


def test_mismatched_text_width_refused_with_both_numbers():
    with pytest.raises(ValueError, match=r"64 != UNet cross_attention_dim 32"):
        build_text_teacher("cond_unet_tiny", 64, sample_size=8)
    net = build_velocity_net("cond_unet_tiny", sample_size=8)
    with pytest.raises(ValueError, match=r"48 != UNet cross_attention_dim 32"):
        train_text_flow(net, torch.randn(4, 4, 8, 8), torch.randn(4, 5, 48), torch.zeros(5, 48),
                        steps=1, batch_size=2, lr=1e-3, ema_decay=0.9)


# --- teacher: caption dropout and one reflow round ------------------------------------------------
def test_drop_caption_probability_extremes():
    cond, null = torch.randn(64, 5, 8), torch.zeros(5, 8)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(drop_caption(cond, null, 0.0, g), cond)
    assert torch.equal(drop_caption(cond, null, 1.0, g), null.expand_as(cond))
    half = drop_caption(cond, null, 0.5, g)
    dropped = (half == 0).flatten(1).all(1).float().mean()
    assert 0.25 < dropped < 0.75


def test_reflow_round_leaves_teacher_and_uses_pairs():
    torch.manual_seed(0)
    teacher = build_text_teacher("cond_unet_tiny", WIDTH, sample_size=8)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    cond, null = torch.randn(6, 5, WIDTH), torch.zeros(5, WIDTH)
    two_rf, losses, (z1, z0_hat) = reflow(
        teacher, cond, null, (4, 8, 8), pair_nfe=2, guidance=1.5, steps=2, batch_size=3,
        lr=1e-3, ema_decay=0.5)
    assert z1.shape == z0_hat.shape == (6, 4, 8, 8) and len(losses) == 2
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert any(not torch.equal(v, two_rf.state_dict()[k]) for k, v in before.items())


# --- the T2I discriminator ------------------------------------------------------------------------
def test_unet_encoder_discriminator_conditions_on_time_and_text():
    torch.manual_seed(0)
    teacher = build_velocity_net("cond_unet_tiny", sample_size=8)
    d = UNetEncoderDiscriminator(teacher, "logit", noise_input=False)
    z, c = torch.randn(3, 4, 8, 8), torch.randn(3, 5, WIDTH)
    t = torch.full((3,), 0.5)
    s = d(z, t, c)
    assert s.shape == (3,)
    assert not torch.allclose(s, d(z, t, 2 * c))  # text matters
    assert not torch.allclose(s, d(z, torch.full((3,), 0.9), c))  # time matters
    # weights are copies: training D never touches the teacher
    next(d.conv_in.parameters()).data.add_(1.0)
    assert not torch.equal(d.conv_in.weight, teacher.model.conv_in.weight)
    # the quirk head is a probability; the R1 double backward works (plain attention processor)
    q = UNetEncoderDiscriminator(teacher, "sigmoid_softplus")
    zr = z.clone().requires_grad_(True)
    sq = q(zr, t, c)
    assert ((sq > 0) & (sq < 1)).all()
    (g,) = torch.autograd.grad(sq.sum(), zr, create_graph=True)
    g.pow(2).sum().backward()
    with pytest.raises(ValueError, match="head"):
        UNetEncoderDiscriminator(teacher, "tanh")
    with pytest.raises(TypeError):
        UNetEncoderDiscriminator(build_velocity_net("unet_tiny", sample_size=8))


# --- rendering, timing, scores --------------------------------------------------------------------
def test_index_noise_depends_only_on_seed_and_index():
    a = index_noise([3, 5, 8], (4, 2, 2), seed=1)
    torch.testing.assert_close(a[1], index_noise([5], (4, 2, 2), seed=1)[0])
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a[0], index_noise([3], (4, 2, 2), seed=2)[0])
    assert shard_indices(5) == [0, 1, 2, 3, 4]  # one process renders everything


def test_seconds_per_image_times_the_calls():
    calls = []

    def slow_net(z, t, cond):
        calls.append(1)
        time.sleep(0.01)
        return z

    z1 = torch.zeros(2, 4, 2, 2)
    sec = seconds_per_image(slow_net, z1, None, 3, warmup=1, repeats=2)
    assert len(calls) == 3 * (1 + 2)  # NFE 3 per call, warm-up + 2 timed
    assert 0.01 * 3 / 2 * 0.9 <= sec < 0.01 * 3 / 2 * 5  # per image: 3 steps / 2 images
    with pytest.raises(ValueError):
        seconds_per_image(slow_net, z1, None, 1, repeats=0)


def test_prompt_accuracy():
    class Fake:
        def classify(self, images):
            return images.flatten(1)[:, 0].long()

    images = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1, 1)
    assert prompt_accuracy(images, [1, 2, 0, 4], Fake()) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        prompt_accuracy(images, [1, 2], Fake())


def test_clip_weights_offline_fail_fast_naming_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="hf download laion/CLIP-ViT-B-32"):
        resolve_open_clip_weights("ViT-B-32", "laion2b_s34b_b79k")
    assert time.perf_counter() - start < 60
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    assert resolve_open_clip_weights("ViT-B-32", str(f)) == str(f)
    with pytest.raises(ValueError, match="list_pretrained"):
        resolve_open_clip_weights("ViT-B-32", "no_such_tag")


# --- slow: two processes, and the notebook ----------------------------------------------------------
@pytest.mark.slow
def test_two_processes_render_every_prompt_exactly_once(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
                         cwd=WORKER.parents[1])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    r = [torch.load(tmp_path / f"rank{k}.pt", weights_only=True) for k in (0, 1)]
    import importlib.util

    spec = importlib.util.spec_from_file_location("t2i_shard_worker", WORKER)
    w = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(w)
    mine0, mine1 = r[0]["mine"], r[1]["mine"]
    assert mine0 and mine1 and not set(mine0) & set(mine1)  # both worked, no prompt twice
    assert sorted(mine0 + mine1) == list(range(w.N_PROMPTS))  # every prompt once
    net, text, prompts = w.setup()
    idx, ref = render_prompts(net, prompts, text, w.SHAPE, w.NFE, seed=w.SEED)  # one process
    for k in (0, 1):
        assert r[k]["idx"] == idx
        torch.testing.assert_close(r[k]["full"], ref)
        torch.testing.assert_close(r[k]["local"], ref[r[k]["mine"]])


@pytest.mark.slow
def test_notebook_08_smoke(tmp_path, monkeypatch):
    import pandas as pd

    from scflow.repro.batch import run_notebook

    for k in ("SCFLOW_CACHE", "SCFLOW_RESULTS", "SCFLOW_RUNS"):
        monkeypatch.setenv(k, str(tmp_path / k.lower()))
    csv = run_notebook("08_text_to_image")
    df = pd.read_csv(csv)
    rows = {"2-rf": {1, 2, 25}, "2-rf+distill": {1, 2}, "cd": {1, 2}, "scflow": {1, 2}}
    # the drawn samples are kept with the prompt of each column, for the report's figure
    from scflow.repro.samples import load_samples

    samples = load_samples(Path(csv).parent, Path(csv).stem)
    assert set(zip(samples.method, samples.nfe, strict=True)) == {
        (m, k) for m, nfes in rows.items() for k in nfes}  # every (method, NFE) evaluated
    from scflow.repro.presets import preset_values
    from scflow.t2i.captions import eval_digit_prompts

    smoke = preset_values("smoke")
    prompts, _ = eval_digit_prompts(smoke["n_eval"], smoke["caption_templates"])
    assert samples.prompts == tuple(prompts[: samples.images.shape[1]])
    assert samples.images.shape[1] == min(smoke["n_show"], smoke["n_eval"])
    for method, nfes in rows.items():
        sub = df[df.method == method]
        for metric in ("fid", "prompt_accuracy", "precision", "recall", "sec_per_image"):
            got = set(sub[sub.metric == metric].nfe.astype(int))
            assert got == nfes, (method, metric, got)
        timed = df[(df.method == f"{method}/no-decode") & (df.metric == "sec_per_image")]
        assert set(timed.nfe.astype(int)) == nfes
    assert df[df.metric == "prompt_accuracy"].value.between(0, 1).all()
    assert (df[df.metric == "sec_per_image"].value > 0).all()
    assert "clip_score" not in set(df.metric)  # the stand-in is never reported as CLIP score
    assert {"loss_cd", "loss_gan", "loss_rf", "loss_bi"} <= set(df.metric)
    assert set(df.preset) == {"smoke"}
