"""Every notebook parameter, declared once, and the presets.

- ``smoke``: CI; seconds per notebook, numbers meaningless (written to ``results/smoke/``).
- ``mini``: the embedded default of ``make reproduce``: real (small) training on a 2-core CPU
  with the shipped MNIST digits. The notebooks' ``parameters`` cells show these values.
- ``smoke`` uses scikit-learn's 8 x 8 digits instead (seconds per notebook).
- ``celebahq256``: the paper's scale (SD VAE, an LFM-sized UNet teacher, a folder of CelebA-HQ
  images at 256 px, Inception FID on 50k samples); needs a GPU and downloaded weights.
- ``gpu``: the mini data and nets with a longer distillation, on ``cuda`` (see the
  block at the end of this file).

A preset only lists the values that differ from ``mini``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

from scflow.repro.paramspec import Param, ParameterError

PRESET_NAMES = ("smoke", "mini", "celebahq256", "gpu")
SEED_MAX = 2**32 - 1
"""Largest seed: what every random generator the notebooks seed accepts, with their offsets."""

PARAMS: dict[str, Param] = {
    # --- bookkeeping --------------------------------------------------------------------------
    "preset": Param(str, "which preset the other values come from", choices=PRESET_NAMES),
    "run_name": Param(str, "name of this run: its CSV is results/<preset>/<run_name>.csv"),
    "seed": Param(int, "random seed for training and the fixed evaluation noise", ge=0,
                  le=SEED_MAX),
    "device": Param(str, "'auto' (accelerate picks), 'cpu' or 'cuda'", choices=("auto", "cpu", "cuda")),
    # --- data and autoencoder -----------------------------------------------------------------
    "dataset": Param(str, "'mnist' (10,000 shipped MNIST digits, 28 x 28), 'digits' "
                          "(scikit-learn's 1,797 8 x 8 scans) or 'folder' (images under data_dir)",
                     choices=("mnist", "digits", "folder")),
    "data_dir": Param(str, "folder of training images when dataset='folder' (e.g. CelebA-HQ)"),
    "data_limit": Param(int, "use at most this many images (0 = all)", ge=0),
    "resolution": Param(int, "image side in pixels", ge=8, le=1024),
    "vae": Param(str, "'' = train a small AutoencoderKL here; else a local folder or hub id of "
                      "a pretrained one (the SD VAE: weights/sd-vae-ft-mse, see the README)"),
    "vae_config": Param(str, "named AutoencoderKL config when training one",
                        choices=("tiny", "mini")),
    "vae_steps": Param(int, "autoencoder training steps", ge=1),
    "vae_kl_weight": Param(float, "weight of the KL term when training the autoencoder", ge=0),
    "latent_scale": Param(float, "latent = scale * E(x); 0 = 1/std of the training latents "
                                 "(SD VAE: 0.18215)", ge=0),
    # --- teacher ------------------------------------------------------------------------------
    "teacher_arch": Param(str, "named velocity-net config (scflow.nets.CONFIGS)"),
    "teacher_steps": Param(int, "teacher training steps (Eq. 1)", ge=1),
    "teacher_batch": Param(int, "teacher batch size", ge=1),
    "teacher_lr": Param(float, "teacher AdamW learning rate", gt=0),
    "teacher_ema": Param(float, "EMA decay of the teacher weights that are kept (warm-up "
                                "min(decay, (1 + k) / (10 + k)) at update k, as diffusers)",
                         ge=0, lt=1),
    "teacher_checkpoint": Param(str, "'' = train the teacher here; else LFM's ADM checkpoint "
                                     "(celeba_f8_adm model_480.pth), converted by scflow.adm",
                                neutral=""),
    "class_cond": Param(bool, "condition the teacher on the digit label (Eq. 2)"),
    "cond_drop": Param(float, "probability of dropping the condition (for CFG, Eq. 3)", ge=0, le=1),
    # Not a notebook parameter: the distillation of a class-conditional teacher (class_cond)
    # takes it from the preset (scflow.repro.experiment.distill); the text teacher's is t2i_guidance.
    "guidance": Param(float, "classifier-free guidance scale g of Eq. 3 for the students' "
                             "class-conditional teacher (1 = none; preset-level)", ge=1),
    # --- evaluation ---------------------------------------------------------------------------
    "nfe_list": Param(list, "numbers of Euler steps to evaluate", item_type=int, ge=1,
                      min_len=1),
    # precision / recall (k = 3 nearest neighbours, scflow.metrics.prdc) need k + 1 samples
    "n_eval": Param(int, "generated samples per FID / precision / recall", ge=4),
    "eval_draws": Param(int, "noise sets of the evaluation bank, n_eval samples each; every run "
                             "is scored on the same sets (scflow.evaluate.bank_noise)", ge=1),
    "teacher_heun_nfe": Param(list, "network evaluations of the teacher's converged reference "
                                    "(Heun, 2 per step; even numbers)", item_type=int, ge=2,
                              multiple_of=2, min_len=1),
    "fid_backend": Param(str, "'digits' (offline classifier features, miniature) or "
                              "'inception' (clean-fid, real scale)", choices=("digits", "inception")),
    "classifier_steps": Param(int, "training steps of the digits feature classifier", ge=1),
    "n_show": Param(int, "samples shown per row in figures", ge=1, le=64),
    # --- distillation (scflow.distill; paper-vs-code switches in scflow.fidelity) ----------------
    # Convention: '' (strings) and 0 (learning rates, eval_ema_decay) mean "take it from
    # `fidelity`" (FIDELITY_SWITCHES below); every other value is explicit.
    # `scflow.repro.configs.distill_config` builds the DistillConfig.
    "fidelity": Param(str, "'paper' or 'code': default of every paper-vs-code switch "
                           "(docs/METHOD.md §3)", choices=("paper", "code")),
    "distance": Param(str, "distance d of L_CD and L_BI: '' = from fidelity, 'l2' (paper) or "
                           "'pseudo_huber' (code)", choices=("", "l2", "pseudo_huber")),
    "huber_c": Param(float, "c of the Pseudo-Huber distance (code: 0.01)", gt=0),
    "time_sampling": Param(str, "training times: '' = from fidelity, 'grid' (paper) or "
                                "'continuous' (code)", choices=("", "grid", "continuous")),
    "grid_points": Param(int, "N of the paper's time grid t = i/N (not stated in the paper)", ge=1),
    "trunc_rule": Param(str, "truncation test: '' = from fidelity, 't' (paper: t <= t_trunc) or "
                             "'t_s' (code: t - d_s < t_trunc)", choices=("", "t", "t_s")),
    "t_trunc": Param(float, "truncation threshold of L_CD (Eq. 8)", ge=0, le=1),
    "t_skip": Param(float, "time-skip threshold of Algorithm 2", ge=0, le=1),
    "lambda_gan": Param(float, "weight of L_GAN (0 = off)", ge=0),
    "lambda_rf": Param(float, "weight of L_RF (0 = off)", ge=0),
    "lambda_bi": Param(float, "weight of L_BI (0 = off)", ge=0),
    "warmup_gan": Param(int, "N_GAN: L_GAN from update N_GAN on (Algorithm 1)", ge=0),
    "warmup_rf": Param(int, "N_RF: L_RF from update N_RF on", ge=0),
    "warmup_bi": Param(int, "N_BI: L_BI from update N_BI on", ge=0),
    "target_ema_decay": Param(float, "decay mu of the target EMA (paper and code: 0.9)", ge=0, lt=1),
    "eval_ema_decay": Param(float, "decay of the evaluation EMA; 0 = from fidelity (0.9 | "
                                   "0.9999; scale it with run length)", ge=0, lt=1),
    "student_lr": Param(float, "student AdamW learning rate; 0 = from fidelity (1e-5 | 2e-5)", ge=0),
    "disc_lr": Param(float, "discriminator AdamW learning rate; 0 = from fidelity (1e-5 | 1e-4)",
                     ge=0),
    "d_head": Param(str, "discriminator head: '' = from fidelity, 'logit' or 'sigmoid_softplus' "
                         "(the code's T2I quirk)", choices=("", "logit", "sigmoid_softplus")),
    "r1_gamma": Param(float, "R1 penalty weight gamma on real latents", ge=0),
    "disc_width": Param(int, "channels of the latent discriminator", ge=1),
    "distill_steps": Param(int, "distillation updates", ge=1),
    "distill_batch": Param(int, "distillation global batch size", ge=1),
    "mixed_precision": Param(str, "'no' or 'bf16' autocast for the network calls",
                             choices=("no", "bf16")),
    "lr_schedule": Param(str, "learning rate over the run (student and discriminator): "
                              "'constant' (the code's), 'cosine' or 'linear' decay to 0 at the "
                              "last update (scflow.schedule)",
                         choices=("constant", "cosine", "linear"), neutral="constant"),
    "eval_ema_warmup": Param(bool, "evaluation EMA decay min(decay, (1 + k) / (10 + k)) at "
                                   "update k, as the teacher's (scflow.schedule)", neutral=False),
    "ckpt_every": Param(int, "write a distillation checkpoint every this many updates (0 = at "
                             "the end only)", ge=0),
}

FIDELITY_SWITCHES: dict[str, Any] = {
    "distance": "", "time_sampling": "", "trunc_rule": "", "eval_ema_decay": 0.0,
    "student_lr": 0.0, "disc_lr": 0.0, "d_head": "",
}
"""The paper-vs-code switches among the parameters (README "fidelity switches"), each with its
"from fidelity" value. A preset's values of them belong to the preset's own ``fidelity`` side
(``mini`` keeps its evaluation EMA and learning rates scaled to its run length); a run that
picks the other side gets the other side's value of every switch it does not set itself
(:func:`scflow.repro.params.resolve_notebook_params`)."""

PRESETS: dict[str, dict[str, Any]] = {
    "mini": {
        "preset": "mini",
        "run_name": "",
        "seed": 0,
        "device": "auto",
        # 10,000 MNIST digits at their real 28 x 28 (padded to 32); scikit-learn's 8 x 8 digits
        # left too little detail for blur and oversaturation to show (docs/METHOD.md, "The
        # miniature's data")
        "dataset": "mnist",
        "data_dir": "",
        "data_limit": 0,
        "resolution": 32,
        "vae": "",
        "vae_config": "mini",
        # on MNIST the autoencoder's blur bounds every sample: a pilot with a fifth of these
        # steps left its reconstructions alone far above the real images' FID floor (notebook
        # 01 measures the autoencoder's floor beside the real ones)
        "vae_steps": 2000,
        "vae_kl_weight": 1e-6,
        "latent_scale": 0.0,
        "teacher_arch": "unet_small",
        "teacher_steps": 6000,  # a pilot at half of it gave a clearly worse Euler FID
        "teacher_batch": 64,
        "teacher_lr": 2e-4,
        "teacher_ema": 0.999,
        "teacher_checkpoint": "",
        "class_cond": False,
        "cond_drop": 0.1,
        "guidance": 1.0,
        "nfe_list": [1, 2, 4, 8, 16],
        "n_eval": 1000,
        "eval_draws": 5,
        "teacher_heun_nfe": [24, 100],
        "fid_backend": "digits",
        "classifier_steps": 1500,
        "n_show": 8,
        # distillation: batch 32 (the paper's CelebA batch); 1,000 updates at a constant learning
        # rate 2e-5 for student and discriminator with the evaluation EMA 0.99, chosen by the
        # training-budget study's rule (notebook 09, docs/METHOD.md §7.7: of the studied budgets
        # only 1,000 lets the grid fit three hours on 2 CPU cores); warm-ups of L_RF / L_BI at
        # 133, as studied (0.9999 would still be mostly the teacher after 1,000 updates).
        # Reasons: docs/METHOD.md §7.2
        "fidelity": "paper",
        "distance": "",
        "huber_c": 0.01,
        "time_sampling": "",
        "grid_points": 1000,
        "trunc_rule": "",
        "t_trunc": 0.4,
        "t_skip": 0.1,
        "lambda_gan": 0.1,
        "lambda_rf": 0.1,
        "lambda_bi": 0.1,
        "warmup_gan": 0,
        "warmup_rf": 133,
        "warmup_bi": 133,
        "target_ema_decay": 0.9,
        "eval_ema_decay": 0.99,
        "student_lr": 2e-5,
        "disc_lr": 2e-5,
        "d_head": "",
        "r1_gamma": 1.0,
        "disc_width": 64,
        "distill_steps": 1000,
        "distill_batch": 32,
        "mixed_precision": "no",
        "ckpt_every": 100,
        "lr_schedule": "constant",
        "eval_ema_warmup": False,
    },
    "smoke": {
        "preset": "smoke",
        "vae_config": "tiny",
        "dataset": "digits",  # scikit-learn's 1,797 digits: seconds per notebook
        "vae_steps": 5,
        "teacher_arch": "unet_tiny",
        "teacher_steps": 5,
        "teacher_batch": 16,
        "nfe_list": [1, 2, 4],
        "n_eval": 64,
        "eval_draws": 2,
        "teacher_heun_nfe": [4],
        "classifier_steps": 20,
        "n_show": 4,
        # distillation
        "warmup_rf": 2,
        "warmup_bi": 2,
        "disc_width": 16,
        "distill_steps": 4,
        "distill_batch": 8,
        "ckpt_every": 2,
    },
    "celebahq256": {
        "preset": "celebahq256",
        "device": "cuda",
        "dataset": "folder",
        "data_dir": "data/celebahq256",
        "resolution": 256,
        "vae": "weights/sd-vae-ft-mse",  # the README's download of stabilityai/sd-vae-ft-mse
        "latent_scale": 0.18215,
        "teacher_arch": "unet_lfm_celeba",  # used only with teacher_checkpoint ''
        # the paper's teacher: LFM's released weights (README "Real data and weights")
        "teacher_checkpoint": "weights/lfm/model_480.pth",
        "teacher_steps": 200_000,
        "teacher_batch": 32,
        "teacher_lr": 2e-5,
        "teacher_ema": 0.9999,
        "n_eval": 50_000,
        "eval_draws": 1,  # 50k samples per FID: one draw
        "fid_backend": "inception",
        # distillation (paper: 200 epochs of 30k images at batch 32)
        "warmup_rf": 1000,
        "warmup_bi": 1000,
        "eval_ema_decay": 0.9999,
        "student_lr": 0.0,  # 0 = the fidelity's (paper 1e-5)
        "disc_lr": 0.0,
        "distill_steps": 187_500,
        "distill_batch": 32,
        "mixed_precision": "bf16",
        "ckpt_every": 5000,
    },
}


# === Baselines of Table 3 (scflow/baselines.py, notebook 06_baselines) ========================
# Rectified flow, 3 stages (InstaFlow's recipe; docs/METHOD.md §4). Scaling of the paper's
# proportions to the miniature (docs/METHOD.md §7.5):
# - the paper spends 200 epochs x 30k images = 6.0M examples on SCFlow, 50 epochs x 50k pairs
#   = 2.5M on reflow (0.417 of SCFlow) and 10 epochs x 50k = 0.5M on the distil stage (0.083).
#   The mini keeps these COMPUTE proportions against its own SCFlow budget (distill_steps
#   1,000 at batch 32): reflow 0.417 x 1,000 = 417 updates, distil 0.083 x 1,000 = 83, batch 32.
#   (Keeping epochs over pairs instead would give the baseline 6x more updates than SCFlow.)
# - pairs: the paper draws 50k pairs = 1.67x its 30k training images; 1.67 x 10,000 digits would
#   be 16,700, cut to 2000 (a fifth of the data) for CPU time. Euler steps per pair: 500 in the
#   paper, 50 here (a tenth; 2000 pairs x 50 steps = 100k teacher evaluations).
# - learning rate: the same as the distillation students' (student_lr, 2e-5), a like-for-like
#   comparison; the paper's CelebA rate 1e-5 at full scale. No EMA: an EMA of decay 0.99 averages
#   over ~100 updates, too long a memory for an 83-update stage, so both stages are evaluated
#   with their raw weights.
PARAMS.update({
    "rectified_pairs": Param(int, "number of (noise, teacher sample) pairs of stage 1 (paper: 50k)",
                             ge=1),
    "rectified_euler_steps": Param(int, "teacher Euler steps per pair in stage 1 (paper: 500)", ge=1),
    "rectified_reflow_steps": Param(int, "stage 2 updates: flow matching on the pairs (paper: "
                                         "50 epochs)", ge=1),
    "rectified_distill_steps": Param(int, "stage 3 updates: regress f(z1, 1) onto the paired "
                                          "sample (paper: 10 epochs)", ge=1),
    "rectified_batch": Param(int, "batch size of stages 2 and 3", ge=1),
    "rectified_lr": Param(float, "AdamW learning rate of stages 2 and 3", gt=0),
})
_BASELINE_PRESETS: dict[str, dict[str, Any]] = {
    "mini": {"rectified_pairs": 2000, "rectified_euler_steps": 50, "rectified_reflow_steps": 417,
             "rectified_distill_steps": 83, "rectified_batch": 32, "rectified_lr": 2e-5},
    "smoke": {"rectified_pairs": 32, "rectified_euler_steps": 4, "rectified_reflow_steps": 3,
              "rectified_distill_steps": 2, "rectified_batch": 8},
    # paper: 50k pairs, 500 steps; 50 and 10 epochs of 50k pairs at batch 32; lr 1e-5
    "celebahq256": {"rectified_pairs": 50_000, "rectified_euler_steps": 500,
                    "rectified_reflow_steps": 78_125, "rectified_distill_steps": 15_625,
                    "rectified_batch": 32, "rectified_lr": 1e-5},
}
for _name, _values in _BASELINE_PRESETS.items():
    PRESETS[_name].update(_values)
# === end of the baselines block =============================================================


# === Text-to-image, Tables 1-2 in miniature (scflow/t2i/, notebook 08) =======================
# docs/METHOD.md §7.4. The mini values size notebook 08 to a fraction of the grid on one CPU
# thread (its measured time: README, Timings):
# 1-RF teacher 1000 updates, one reflow round on 1000 pairs of 25 Euler steps (500 updates),
# 200 distillation updates per student (warm-ups of L_RF / L_BI scaled to 50). The real T2I run
# (paper: 18k iterations from InstaFlow's 2-RF, COCO prompts) has no preset here: its parts
# are the library functions of scflow/t2i and scflow.pretrained.load_sd_pipeline_parts.
PARAMS.update({
    "t2i_arch": Param(str, "text-conditional velocity-net config (scflow.nets.CONFIGS)",
                      choices=("cond_unet_tiny", "cond_unet_small", "cond_unet_mini")),
    "text_max_length": Param(int, "tokens per caption (SD / CLIP: 77; the digit captions fit 16)",
                             ge=8, le=77),
    "caption_templates": Param(int, "how many caption templates describe each digit", ge=1, le=5),
    "t2i_teacher_steps": Param(int, "1-RF text teacher training steps (Eq. 2 + caption dropout)",
                               ge=1),
    "reflow_pairs": Param(int, "(noise, sample) pairs of the reflow round that makes 2-RF", ge=1),
    "reflow_euler_steps": Param(int, "Euler steps (with CFG) per reflow pair", ge=1),
    "reflow_steps": Param(int, "2-RF training steps on the pairs (initialised from 1-RF)", ge=1),
    "t2i_guidance": Param(float, "CFG scale of the teacher, Eq. 3 (authors' T2I code: 1.5)", ge=1),
    "t2i_distill_steps": Param(int, "distillation updates per T2I student", ge=1),
    "t2i_warmup_rf": Param(int, "N_RF of the T2I students (paper 1000 of 18k; code 0)", ge=0),
    "t2i_warmup_bi": Param(int, "N_BI of the T2I students (paper 1000 of 18k; code 500)", ge=0),
    "timing_repeats": Param(int, "timed repetitions of the seconds-per-image harness", ge=1),
    "use_clip_score": Param(bool, "also compute CLIP score (needs open_clip weights offline)"),
    "clip_model": Param(str, "open_clip model name for the CLIP score"),
    "clip_pretrained": Param(str, "open_clip pretrained tag or a local weights file"),
})
_T2I_PRESETS: dict[str, dict[str, Any]] = {
    "mini": {"t2i_arch": "cond_unet_small", "text_max_length": 16, "caption_templates": 5,
             "t2i_teacher_steps": 1000, "reflow_pairs": 1000, "reflow_euler_steps": 25,
             "reflow_steps": 500, "t2i_guidance": 1.5, "t2i_distill_steps": 200,
             "t2i_warmup_rf": 50, "t2i_warmup_bi": 50, "timing_repeats": 3,
             "use_clip_score": False, "clip_model": "ViT-B-32",
             "clip_pretrained": "laion2b_s34b_b79k"},
    "smoke": {"t2i_arch": "cond_unet_tiny", "t2i_teacher_steps": 4, "reflow_pairs": 16,
              "reflow_euler_steps": 2, "reflow_steps": 3, "t2i_distill_steps": 3,
              "t2i_warmup_rf": 1, "t2i_warmup_bi": 1, "timing_repeats": 1},
}
for _name, _values in _T2I_PRESETS.items():
    PRESETS[_name].update(_values)
# === end of the text-to-image block =========================================================


# === GPU runs: the opt-in `compile` switch and the `gpu` preset ==============================
# - compile: a speed switch (scflow.compile); "no" is neutral, so it leaves every committed
#   configuration hash unchanged.
# - gpu: the mini data, autoencoder and teacher (same values) with a longer distillation: twice
#   the Tables 3-6 students' budget (2,000 updates, warm-ups 266, the baseline's stages in the
#   same proportions) and ten times the text-to-image students' (2,000 updates, warm-ups 500).
#   What the grid costs on a GPU: docs/GPU.md.
PARAMS.update({
    "compile": Param(str, "'no' (eager) or 'torch': torch.compile the velocity nets of the "
                          "distillation step and of sampling (speed only, scflow.compile)",
                     choices=("no", "torch"), neutral="no"),
})
PRESETS["mini"]["compile"] = "no"
# - threads: the CPU threads of torch and BLAS in a notebook's kernel. The runner gives each
#   notebook one thread (`make reproduce`: two notebooks at once on the 2-core CPU), and a
#   reduction split over another number of threads can differ in its last bits, so a kernel left
#   at its default (JupyterLab: every core) would not reproduce a committed row exactly. Every
#   notebook that trains or evaluates pins its kernel to `threads` right after checking its
#   parameters (scflow.repro.experiment.pin_threads); 1 is neutral, so the parameter left every
#   committed hash unchanged.
PARAMS.update({
    "threads": Param(int, "CPU threads of torch and BLAS in this notebook's kernel (the runner's "
                          "one per notebook: the committed results)", ge=1, neutral=1),
})
PRESETS["mini"]["threads"] = 1
PRESETS["gpu"] = {
    "preset": "gpu",
    "device": "cuda",
    "distill_steps": 2000,
    "warmup_rf": 266,
    "warmup_bi": 266,
    "ckpt_every": 1000,
    "rectified_reflow_steps": 833,
    "rectified_distill_steps": 167,
    "t2i_distill_steps": 2000,
    "t2i_warmup_rf": 500,
    "t2i_warmup_bi": 500,
}
# === end of the GPU block ===================================================================


OVERRIDES_ENV = "SCFLOW_SET"
"""JSON object of batch-wide overrides (the runner's ``--set key=value``), applied over every
preset by :func:`preset_values`; the runner sets it for its planning and its kernels."""


def batch_overrides() -> dict[str, Any]:
    """The overrides in ``$SCFLOW_SET`` (empty when unset)."""
    text = os.environ.get(OVERRIDES_ENV, "")
    try:
        values = json.loads(text) if text.strip() else {}
    except ValueError:
        raise ParameterError(f"{OVERRIDES_ENV} is not a JSON object: {text[:80]!r}") from None
    if not isinstance(values, dict):
        raise ParameterError(f"{OVERRIDES_ENV} is not a JSON object: {text[:80]!r}")
    unknown = sorted(k for k in values if k not in PARAMS or k in ("preset", "run_name"))
    if unknown:
        raise ParameterError(f"{OVERRIDES_ENV} sets {unknown}: not values a preset can have")
    return {k: PARAMS[k].check(k, v) for k, v in values.items()}


@contextlib.contextmanager
def overrides_applied(values: dict[str, Any]) -> Iterator[None]:
    """Within the block (and in the kernels started in it) every preset has ``values``."""
    saved = os.environ.get(OVERRIDES_ENV)
    if values:
        os.environ[OVERRIDES_ENV] = json.dumps(values)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(OVERRIDES_ENV, None)
        else:
            os.environ[OVERRIDES_ENV] = saved


def preset_values(preset: str) -> dict[str, Any]:
    """All values of ``preset``: ``mini`` with the preset's differences applied, then the
    batch-wide overrides (:func:`batch_overrides`, the runner's ``--set``)."""
    if preset not in PRESETS:
        raise ParameterError(f"unknown preset {preset!r}; valid: {', '.join(PRESET_NAMES)}")
    return {**PRESETS["mini"], **PRESETS[preset], **batch_overrides()}


# === Training-budget study (scflow/repro/budget.py, notebook 09_training_budget) ====================
# The study distils the Table 4 rows it names under each studied schedule to several budgets, on
# its own seed (never a reported seed), scores every student on the evaluation bank, and
# scflow.repro.budget.select_setting turns it into the miniature's schedule and budget by a rule
# fixed before the study ran.
PARAMS.update({
    "study_seed": Param(int, "seed of the study's students (the reported rows use `seed`: 0 "
                             "and up; so the study never selects on them)", ge=0, le=SEED_MAX),
    "study_methods": Param(list, "Table 4 rows studied", item_type=str,
                           choices=("cd", "gan", "rf", "scflow"), min_len=1),
    "study_schedules": Param(list, "learning-rate schedules with their evaluation EMA studied "
                                   "(scflow.repro.budget.SCHEDULES)", item_type=str,
                             choices=("constant", "cosine"), min_len=1),
    "study_budgets": Param(list, "updates per student studied (a constant schedule: snapshots "
                                 "of one run; a decaying one: one run each)",
                           item_type=int, ge=1, min_len=1),
    "budget_minutes": Param(float, "wall-clock limit of the whole grid on the reference machine "
                                   "(2-core CPU, --jobs 2) used by the selection rule", gt=0),
    "grid_students": Param(int, "distilled students in the whole grid (Tables 3-6, with seeds)",
                           ge=1),
    "grid_fixed_minutes": Param(float, "one-thread minutes of the grid's other runs (teacher, "
                                       "text-to-image, baseline, report)", ge=0),
})
_STUDY_PRESETS: dict[str, dict[str, Any]] = {
    # 24 students = Table 4's four rows x 3 seeds + Table 5's five other rows + Table 6's six
    # other rows + the code-switches run; 55 fixed minutes = teacher (autoencoder, teacher,
    # classifier, its evaluation) 20 + text-to-image 25 + baseline 9 + report 1, estimated from
    # one-thread timings on the 2-core CPU before the study ran, and left as the rule read them
    # (the grid's measured time: README, Timings)
    "mini": {"study_seed": 100, "study_methods": ["cd", "gan", "scflow"],
             "study_schedules": ["constant", "cosine"], "study_budgets": [1000, 2000, 4000],
             "budget_minutes": 180.0, "grid_students": 24, "grid_fixed_minutes": 55.0},
    "smoke": {"study_budgets": [2, 4], "budget_minutes": 1.0},
}
for _name, _values in _STUDY_PRESETS.items():
    PRESETS[_name].update(_values)
_DISTILL_KEYS = ("fidelity", "distance", "huber_c", "time_sampling", "grid_points", "trunc_rule",
                 "t_trunc", "t_skip", "lambda_gan", "lambda_rf", "lambda_bi", "warmup_gan",
                 "warmup_rf", "warmup_bi", "target_ema_decay", "eval_ema_decay", "student_lr",
                 "disc_lr", "d_head", "r1_gamma", "disc_width", "distill_steps", "distill_batch",
                 "mixed_precision", "ckpt_every", "lr_schedule", "eval_ema_warmup", "guidance")
"""What Algorithm 1's students read from the preset (scflow.repro.configs.distill_config)."""
# A preset key a notebook provably never reads is not part of its configuration hash (the rest
# of the preset is: notebooks take what they share from it). Notebook 01 reads its own
# parameters only and trains no student; the study sets the update count and the schedule
# itself and never runs the Table 3 baseline: choosing the miniature's schedule and budget from
# the study (and writing them into the preset) invalidates neither the teacher nor the study.
PRESET_KEYS_NOT_READ: dict[str, tuple[str, ...]] = {
    "01_latent_flow_matching": (*_DISTILL_KEYS, *_BASELINE_PRESETS["mini"], *_T2I_PRESETS["mini"],
                                *_STUDY_PRESETS["mini"], "compile"),
    "09_training_budget": ("distill_steps", "lr_schedule", "eval_ema_decay", "eval_ema_warmup",
                           *_BASELINE_PRESETS["mini"]),
}
