"""The text-to-image miniature, end to end (notebook 08): data, 1-RF -> 2-RF teacher, students.

Everything trained is cached by its configuration (:mod:`scflow.cache`). The digits, the
autoencoder and its latents are the SAME cache entries as notebook 01's, so after
``make reproduce`` has run 01 only the text-conditional parts are trained here.

Rows of Tables 1-2 in miniature (method names in the CSV):

- ``2-rf``: the 2-RF teacher (1-RF + one reflow round), Euler with CFG, NFE 25 / 1 / 2;
- ``2-rf+distill``: InstaFlow's last stage on the 2-RF teacher (regress ``f(z1, 1, c)`` onto
  pairs the 2-RF model generated with CFG);
- ``cd``: consistency distillation alone (LCM-like: CFG teacher, no truncation / GAN / RF / BI);
- ``scflow``: Algorithm 1 with the T2I discriminator (:mod:`scflow.t2i.discriminator`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scflow.autoencoder import LatentCodec, ae_cache_config, get_codec, latent_space_key
from scflow.baselines import distill_loss, train_on_pairs
from scflow.cache import cached
from scflow.data import ImageSet, load_images
from scflow.distill import DistillConfig
from scflow.flow import guided
from scflow.nets import CONFIGS, VelocityNet
from scflow.repro.configs import autoencoder_config, data_config
from scflow.repro.experiment import resolve_device
from scflow.t2i.captions import TEMPLATES, digit_captions
from scflow.t2i.teacher import build_text_teacher, reflow, reflow_pairs, train_text_flow
from scflow.text import TextEncoder, tiny_clip_text_encoder

STUDENTS = ("cd", "scflow")
"""The distilled students: Table 4's CD and SCFlow rows (:data:`scflow.repro.methods.TABLE4`)."""


@dataclass
class T2ISetup:
    """Shared state of the miniature (see :func:`prepare_t2i`)."""

    p: dict[str, Any]
    data: ImageSet
    codec: LatentCodec
    latents: Tensor
    captions: list[str]
    text: TextEncoder
    cond: Tensor  # (N, L, D) caption embeddings of the training images
    null: Tensor  # (L, D) empty-prompt embedding (CFG null)
    teacher_1rf: VelocityNet
    teacher: VelocityNet  # the 2-RF teacher
    device: str
    hits: dict[str, bool]
    losses: dict[str, Tensor]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.latents.shape[1:])


def text_width(arch: str) -> int:
    """The cross-attention width of a named text-conditional config (= the text encoder's)."""
    cls, kw = CONFIGS[arch]
    if cls != "UNet2DConditionModel":
        raise ValueError(f"{arch!r} is not text-conditional (a {cls}); use a cond_unet_* config")
    return int(kw["cross_attention_dim"])


def make_text_encoder(p: dict[str, Any], device: str = "cpu") -> TextEncoder:
    """The miniature's text encoder: a small random ``CLIPTextModel`` + the real CLIP BPE."""
    return tiny_clip_text_encoder(hidden_size=text_width(p["t2i_arch"]),
                                  max_length=p["text_max_length"], seed=p["seed"], device=device)


def _text_key(p: dict[str, Any]) -> dict[str, Any]:
    return {"encoder": "tiny_clip", "width": text_width(p["t2i_arch"]),
            "max_length": p["text_max_length"], "seed": p["seed"],
            "templates": list(TEMPLATES[: p["caption_templates"]])}


def teacher_key(p: dict[str, Any]) -> dict[str, Any]:
    """What the 1-RF text teacher depends on."""
    keys = ("t2i_teacher_steps", "teacher_batch", "teacher_lr", "teacher_ema", "cond_drop", "seed")
    latents = ae_cache_config(autoencoder_config(p), data_config(p))
    return {"kind": "t2i_teacher", "latents": latents, "text": _text_key(p),
            "arch": p["t2i_arch"], "arch_definition": CONFIGS[p["t2i_arch"]], "ema": "warmup",
            **{k: p[k] for k in keys}}


def reflow_key(p: dict[str, Any]) -> dict[str, Any]:
    """What the 2-RF teacher depends on: the 1-RF teacher and the reflow settings."""
    keys = ("reflow_pairs", "reflow_euler_steps", "reflow_steps", "t2i_guidance")
    return {"kind": "t2i_2rf", "teacher": teacher_key(p), **{k: p[k] for k in keys}}


def prepare_t2i(p: dict[str, Any], progress: bool = True) -> T2ISetup:
    """Digits -> latents (notebook 01's cache) -> captions -> 1-RF teacher -> 2-RF teacher."""
    if p["dataset"] not in ("mnist", "digits"):
        raise ValueError("the text-to-image miniature captions the digits: dataset must be "
                         "'mnist' or 'digits'")
    device = resolve_device(p["device"])
    data_cfg, ae_cfg = data_config(p), autoencoder_config(p)
    data = load_images(data_cfg)
    codec, ae_hit = get_codec(ae_cfg, data_cfg, data.images, progress=progress)
    codec.vae.to(device)
    lat_cfg = {"kind": "latents", "codec": latent_space_key(ae_cfg, data_cfg),
               "latent_scale": ae_cfg.latent_scale, "n": len(data)}  # == experiment.prepare's key
    lat_dir, lat_hit = cached("latents", lat_cfg, lambda d: torch.save(
        codec.encode(data.images), d / "latents.pt"))
    latents = torch.load(lat_dir / "latents.pt")
    captions = digit_captions(data.labels, p["caption_templates"], seed=p["seed"])
    text = make_text_encoder(p, device="cpu")
    cond, null = text(captions), text([""])[0]
    shape = tuple(latents.shape[1:])
    train = dict(batch_size=p["teacher_batch"], lr=p["teacher_lr"], ema_decay=p["teacher_ema"],
                 cond_drop=p["cond_drop"], device=device, progress=progress)

    def build_1rf(d: Path) -> None:
        net = build_text_teacher(p["t2i_arch"], text.width, shape[-1], shape[0], seed=p["seed"])
        ema, losses = train_text_flow(net, latents, cond, null, steps=p["t2i_teacher_steps"],
                                      seed=p["seed"], **train)
        ema.cpu().save(d / "net")
        torch.save(torch.tensor(losses), d / "losses.pt")

    d1, hit1 = cached("t2i_teacher", teacher_key(p), build_1rf)
    teacher_1rf = _load(d1, device)

    def build_2rf(d: Path) -> None:
        g = torch.Generator().manual_seed(p["seed"] + 5)
        idx = torch.randint(len(captions), (p["reflow_pairs"],), generator=g)
        two_rf, losses, _ = reflow(
            teacher_1rf, cond[idx], null, shape, pair_nfe=p["reflow_euler_steps"],
            guidance=p["t2i_guidance"], steps=p["reflow_steps"], seed=p["seed"], **train)
        two_rf.cpu().save(d / "net")
        torch.save(torch.tensor(losses), d / "losses.pt")

    d2, hit2 = cached("t2i_2rf", reflow_key(p), build_2rf)
    return T2ISetup(p, data, codec, latents, captions, text, cond, null, teacher_1rf,
                    _load(d2, device), device,
                    {"autoencoder": ae_hit, "latents": lat_hit, "teacher_1rf": hit1,
                     "teacher_2rf": hit2},
                    {"1-rf": torch.load(d1 / "losses.pt"), "2-rf": torch.load(d2 / "losses.pt")})


def _load(d: Path, device: str) -> VelocityNet:
    return VelocityNet.load(d / "net").to(device).eval().requires_grad_(False)


def distill_t2i(cfg: DistillConfig, method: str, s: T2ISetup, steps: int, progress: bool = True
                ) -> tuple[VelocityNet, list[dict[str, float]], bool]:
    """Algorithm 1 with ``cfg`` from the 2-RF teacher (CFG teacher, T2I discriminator) for
    ``steps`` updates; cached when done. ``cfg`` is the text-to-image config of the Table 4 row
    ``method`` (:func:`scflow.repro.configs.distill_config` with ``t2i=True``).

    Returns ``(eval_ema, history, hit)``.
    """
    from scflow.distill import LatentData
    from scflow.t2i.discriminator import UNetEncoderDiscriminator
    from scflow.trainer import Distiller

    key = {"kind": "t2i_distill", "method": method, "teacher": reflow_key(s.p),
           "cfg": cfg.as_dict(), "steps": steps}

    def build(d: Path) -> None:
        # the discriminator noises its inputs with torch's global generator: seeded here, so a
        # student does not depend on what ran before it in the process (e.g. a cached teacher)
        torch.manual_seed(cfg.seed)
        disc = None
        if cfg.lambda_gan > 0:
            with torch.random.fork_rng(devices=[]):  # its head's weights: the same every process
                torch.manual_seed(cfg.seed)
                disc = UNetEncoderDiscriminator(s.teacher, cfg.fidelity.d_head)
        dist = Distiller(s.teacher, LatentData(s.latents, s.cond), cfg, null_cond=s.null,
                         disc=disc, device=s.p["device"])
        history = dist.train(steps, progress=progress)
        dist.eval_ema.cpu().save(d / "net")
        (d / "history.json").write_text(json.dumps(history))

    d, hit = cached("t2i_distill", key, build)
    return _load(d, s.device), json.loads((d / "history.json").read_text()), hit


def one_step_distill(p: dict[str, Any], s: T2ISetup, progress: bool = True
                     ) -> tuple[VelocityNet, list[float], bool]:
    """InstaFlow's distil stage on the 2-RF teacher, with captions (cached).

    Pairs ``(z1, z0_hat)`` from the 2-RF model with CFG (``reflow_euler_steps`` Euler steps),
    then ``|| f(z1, 1, c) - z0_hat ||^2`` (Eq. 5, :func:`scflow.baselines.distill_loss` with the
    caption passed through), starting from the 2-RF weights.
    """
    key = {"kind": "t2i_instaflow", "teacher": reflow_key(s.p),
           **{k: p[k] for k in ("reflow_pairs", "reflow_euler_steps", "t2i_distill_steps",
                                "distill_batch", "student_lr", "seed")}}

    def build(d: Path) -> None:
        g = torch.Generator().manual_seed(p["seed"] + 6)
        idx = torch.randint(len(s.captions), (p["reflow_pairs"],), generator=g)
        cond = s.cond[idx]
        z1, z0_hat = reflow_pairs(s.teacher, cond, s.null, s.latent_shape,
                                  nfe=p["reflow_euler_steps"], guidance=p["t2i_guidance"],
                                  seed=p["seed"] + 1, device=s.device)
        net, losses = train_on_pairs(s.teacher, z1, z0_hat, distill_loss, cond=cond,
                                     steps=p["t2i_distill_steps"], batch_size=p["distill_batch"],
                                     lr=p["student_lr"] or 2e-5, seed=p["seed"], device=s.device)
        net.cpu().save(d / "net")
        torch.save(torch.tensor(losses), d / "losses.pt")

    d, hit = cached("t2i_instaflow", key, build)
    return _load(d, s.device), torch.load(d / "losses.pt").tolist(), hit


def teacher_sampler(s: T2ISetup) -> Any:
    """The 2-RF teacher with classifier-free guidance (Eq. 3), scale ``t2i_guidance``."""
    return guided(s.teacher, s.null.to(s.device), s.p["t2i_guidance"])


def evaluate_t2i(net: Any, s: T2ISetup, prompts: list[str], digits: list[int],
                 nfe_list: list[int], extractor: Any, *, method: str, results: Any = None,
                 clip: Any = None, batch_size: int = 250, draws: int = 1
                 ) -> tuple[dict[int, Tensor], list[dict]]:
    """Render every prompt once per NFE (:func:`~scflow.t2i.sampling.render_prompts`), decode,
    and score: FID / precision / recall vs the real digits, ``prompt_accuracy``, and
    ``clip_score`` when a :class:`~scflow.t2i.scores.ClipScorer` is given.

    ``draws``: noise sets of the evaluation bank, the per-prompt noise of set ``k`` seeded from
    :data:`scflow.evaluate.EVAL_BANK_SEED` ``+ k`` (the same for every method and training
    seed: comparisons pair up draw by draw). Returns ``(images per NFE of the first set, rows)``;
    rows (with their ``draw``) are also added to ``results`` when given.
    """
    from scflow.evaluate import EVAL_BANK_SEED
    from scflow.metrics import evaluate_samples
    from scflow.t2i.sampling import render_prompts
    from scflow.t2i.scores import prompt_accuracy

    images, rows = {}, []
    real_feats = extractor(s.data.images)  # once for every draw and NFE
    for k in range(draws):
        for nfe in nfe_list:
            _, lat = render_prompts(net, prompts, s.text, s.latent_shape, nfe,
                                    seed=EVAL_BANK_SEED + k, batch_size=batch_size,
                                    device=s.device)
            x = s.codec.decode(lat)
            if k == 0:
                images[nfe] = x
            m = evaluate_samples(x, s.data.images, extractor, real_feats=real_feats)
            m["prompt_accuracy"] = prompt_accuracy(x, digits, extractor)
            if clip is not None:
                m["clip_score"] = clip(x, prompts)
            rows += [dict(metric=key, value=float(v), method=method, nfe=nfe, draw=k,
                          n_samples=len(prompts)) for key, v in m.items()]
    if results is not None:
        for r in rows:
            results.add(r["metric"], r["value"], method=r["method"], nfe=r["nfe"],
                        n_samples=r["n_samples"], draw=r["draw"])
    return images, rows


def timing_rows(net: Any, s: T2ISetup, prompt: str, nfe_list: list[int], *, method: str,
                repeats: int = 3, results: Any = None) -> list[dict]:
    """Seconds per image (Table 2's "time") at each NFE, one image per call as the paper's
    latency, with the VAE decode (method name as is) and without (``<method>/no-decode``)."""
    from scflow.t2i.sampling import index_noise, seconds_per_image

    z1 = index_noise([0], s.latent_shape, s.p["seed"]).to(s.device)
    cond = s.text([prompt]).to(s.device)
    rows = []
    for nfe in nfe_list:
        for name, dec in ((method, s.codec.decode), (f"{method}/no-decode", None)):
            sec = seconds_per_image(net, z1, cond, nfe, decode=dec, warmup=1, repeats=repeats)
            rows.append(dict(metric="sec_per_image", value=sec, method=name, nfe=nfe))
            if results is not None:
                results.add("sec_per_image", sec, method=name, nfe=nfe, n_samples=repeats)
    return rows
