"""Every notebook parameter, declared once, and the three presets.

- ``smoke``: CI; seconds per notebook, numbers meaningless (written to ``results/smoke/``).
- ``mini``: the embedded default of ``make reproduce``: real (small) training on a 2-core CPU
  with scikit-learn's digits. The notebooks' ``parameters`` cells show these values.
- ``celebahq256``: the paper's scale (SD VAE, an LFM-sized UNet teacher, a folder of CelebA-HQ
  images at 256 px, Inception FID on 50k samples); needs a GPU and downloaded weights.

A preset only lists the values that differ from ``mini``.
"""

from __future__ import annotations

from typing import Any

from scflow.params import Param

PRESET_NAMES = ("smoke", "mini", "celebahq256")

PARAMS: dict[str, Param] = {
    # --- bookkeeping --------------------------------------------------------------------------
    "preset": Param(str, "which preset the other values come from", choices=PRESET_NAMES),
    "run_name": Param(str, "name of this run: its CSV is results/<preset>/<run_name>.csv"),
    "seed": Param(int, "random seed for training and the fixed evaluation noise", ge=0),
    "device": Param(str, "'auto' (accelerate picks), 'cpu' or 'cuda'", choices=("auto", "cpu", "cuda")),
    # --- data and autoencoder -----------------------------------------------------------------
    "dataset": Param(str, "'digits' (embedded) or 'folder' (images under data_dir)",
                     choices=("digits", "folder")),
    "data_dir": Param(str, "folder of training images when dataset='folder' (e.g. CelebA-HQ)"),
    "data_limit": Param(int, "use at most this many images (0 = all)", ge=0),
    "resolution": Param(int, "image side in pixels", ge=8, le=1024),
    "vae": Param(str, "'' = train a small AutoencoderKL here; else a local path or hub id of a "
                      "pretrained one (e.g. stabilityai/sd-vae-ft-mse)"),
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
    "teacher_ema": Param(float, "EMA decay of the teacher weights that are kept", ge=0, lt=1),
    "class_cond": Param(bool, "condition the teacher on the digit label (Eq. 2)"),
    "cond_drop": Param(float, "probability of dropping the condition (for CFG, Eq. 3)", ge=0, le=1),
    "guidance": Param(float, "classifier-free guidance scale g of Eq. 3 (1 = none)", ge=1),
    # --- evaluation ---------------------------------------------------------------------------
    "nfe_list": Param(list, "numbers of Euler steps to evaluate", item_type=int, ge=1),
    "n_eval": Param(int, "generated samples per FID / precision / recall", ge=2),
    "fid_backend": Param(str, "'digits' (offline classifier features, miniature) or "
                              "'inception' (clean-fid, real scale)", choices=("digits", "inception")),
    "classifier_steps": Param(int, "training steps of the digits feature classifier", ge=1),
    "n_show": Param(int, "samples shown per row in figures", ge=1, le=64),
    # --- distillation (scflow.distill; paper-vs-code switches in scflow.fidelity) ----------------
    # Convention: '' (strings) and 0 (learning rates) mean "take it from `fidelity`"; every other
    # value is explicit. `scflow.distill.config_from_params` builds the DistillConfig.
    "fidelity": Param(str, "'paper' or 'code': default of every paper-vs-code switch "
                           "(METHOD.md Sec. 3)", choices=("paper", "code")),
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
    "eval_ema_decay": Param(float, "decay of the evaluation EMA (code: 0.9999; scale it with "
                                   "run length)", ge=0, lt=1),
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
    "ckpt_every": Param(int, "write a distillation checkpoint every this many updates (0 = at "
                             "the end only)", ge=0),
}

PRESETS: dict[str, dict[str, Any]] = {
    "mini": {
        "preset": "mini",
        "run_name": "",
        "seed": 0,
        "device": "auto",
        "dataset": "digits",
        "data_dir": "",
        "data_limit": 0,
        "resolution": 32,
        "vae": "",
        "vae_config": "mini",
        "vae_steps": 800,
        "vae_kl_weight": 1e-6,
        "latent_scale": 0.0,
        "teacher_arch": "unet_mini",
        "teacher_steps": 3000,
        "teacher_batch": 64,
        "teacher_lr": 2e-4,
        "teacher_ema": 0.999,
        "class_cond": False,
        "cond_drop": 0.1,
        "guidance": 1.0,
        "nfe_list": [1, 2, 4, 8, 16, 25],
        "n_eval": 1000,
        "fid_backend": "digits",
        "classifier_steps": 1500,
        "n_show": 8,
        # distillation (METHOD.md Sec. 7's feasibility check)
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
        "warmup_rf": 200,
        "warmup_bi": 200,
        "target_ema_decay": 0.9,
        "eval_ema_decay": 0.99,
        "student_lr": 2e-5,
        "disc_lr": 0.0,
        "d_head": "",
        "r1_gamma": 1.0,
        "disc_width": 64,
        "distill_steps": 600,
        "distill_batch": 64,
        "mixed_precision": "no",
        "ckpt_every": 100,
    },
    "smoke": {
        "preset": "smoke",
        "vae_config": "tiny",
        "vae_steps": 5,
        "teacher_arch": "unet_tiny",
        "teacher_steps": 5,
        "teacher_batch": 16,
        "nfe_list": [1, 2, 4],
        "n_eval": 64,
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
        "vae": "stabilityai/sd-vae-ft-mse",
        "latent_scale": 0.18215,
        "teacher_arch": "unet_lfm_celeba",
        "teacher_steps": 200_000,
        "teacher_batch": 32,
        "teacher_lr": 2e-5,
        "teacher_ema": 0.9999,
        "n_eval": 50_000,
        "fid_backend": "inception",
        # distillation (paper: 200 epochs of 30k images at batch 32)
        "warmup_rf": 1000,
        "warmup_bi": 1000,
        "eval_ema_decay": 0.9999,
        "student_lr": 0.0,
        "distill_steps": 187_500,
        "distill_batch": 32,
        "mixed_precision": "bf16",
        "ckpt_every": 5000,
    },
}


def preset_values(preset: str) -> dict[str, Any]:
    """All values of ``preset`` (``mini`` with the preset's differences applied)."""
    if preset not in PRESETS:
        from scflow.params import ParameterError

        raise ParameterError(f"unknown preset {preset!r}; valid: {', '.join(PRESET_NAMES)}")
    return {**PRESETS["mini"], **PRESETS[preset]}
