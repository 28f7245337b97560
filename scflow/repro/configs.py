"""Notebook parameters -> the library's typed configs, in one place.

The library (``scflow/``) takes typed, validated configs and never reads the notebooks'
parameter dict; this module is where a parameter name becomes a config field:

==========================  =====================================================
:func:`data_config`         :class:`scflow.data.DataConfig`
:func:`autoencoder_config`  :class:`scflow.autoencoder.AutoencoderConfig`
:func:`teacher_config`      :class:`scflow.teacher.TeacherConfig`
:func:`baseline_config`     :class:`scflow.baselines.BaselineConfig`
:func:`distill_config`      :class:`scflow.distill.DistillConfig` (Algorithm 1)
==========================  =====================================================

``p`` is a mapping of parameter names to values: a notebook's resolved parameters
(:class:`scflow.repro.params.RunParams`) or the values of a preset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from scflow.autoencoder import AutoencoderConfig
from scflow.baselines import BaselineConfig
from scflow.data import DataConfig
from scflow.distill import DistillConfig
from scflow.fidelity import make_fidelity
from scflow.repro.methods import Method
from scflow.repro.paramspec import ParameterError
from scflow.repro.presets import FIDELITY_SWITCHES, preset_values
from scflow.teacher import TeacherConfig

FIDELITY_FIELDS = {"distance": "distance", "time_sampling": "time_sampling",
                   "trunc_rule": "trunc_rule", "eval_ema_decay": "eval_decay",
                   "student_lr": "student_lr", "disc_lr": "disc_lr", "d_head": "d_head"}
"""Switch parameter -> its field of :class:`scflow.fidelity.FidelityConfig`."""


def data_config(p: Mapping[str, Any]) -> DataConfig:
    """The training images of ``p``."""
    return DataConfig(dataset=p["dataset"], data_dir=p["data_dir"], limit=p["data_limit"],
                      resolution=p["resolution"])


def autoencoder_config(p: Mapping[str, Any]) -> AutoencoderConfig:
    """The latent codec of ``p`` (the SD VAE when ``vae`` is set, else one trained here)."""
    return AutoencoderConfig(pretrained=p["vae"], arch=p["vae_config"], steps=p["vae_steps"],
                             kl_weight=p["vae_kl_weight"], latent_scale=p["latent_scale"],
                             seed=p["seed"])


def teacher_config(p: Mapping[str, Any]) -> TeacherConfig:
    """The teacher of ``p`` (LFM's checkpoint when ``teacher_checkpoint`` is set)."""
    return TeacherConfig(arch=p["teacher_arch"], steps=p["teacher_steps"],
                         batch_size=p["teacher_batch"], lr=p["teacher_lr"],
                         ema_decay=p["teacher_ema"], checkpoint=p["teacher_checkpoint"],
                         class_cond=p["class_cond"], cond_drop=p["cond_drop"], seed=p["seed"])


def baseline_config(p: Mapping[str, Any]) -> BaselineConfig:
    """The three stages of Table 3's rectified-flow baseline (notebook 06)."""
    return BaselineConfig(pairs=p["rectified_pairs"], euler_steps=p["rectified_euler_steps"],
                          reflow_steps=p["rectified_reflow_steps"],
                          distill_steps=p["rectified_distill_steps"],
                          batch_size=p["rectified_batch"], lr=p["rectified_lr"], seed=p["seed"])


def method_values(p: Mapping[str, Any], method: Method | None = None) -> Callable[[str], Any]:
    """Where Algorithm 1's parameters come from: ``value(name)`` is the method's switch, else
    ``p``'s value, else the preset's.

    Notebooks 02-04 do not expose the parameters their row switches off, and no student
    notebook exposes every knob: those come from the preset of ``p``. A switch that contradicts
    a value the run sets explicitly (``p.explicit``: a run file's key) is refused, naming both,
    instead of silently winning. Each value is looked up when asked for, so ``p`` is read for
    exactly the parameters a config uses.
    """
    switches = dict(method.switches) if method is not None else {}
    explicit = getattr(p, "explicit", frozenset())
    clash = {k: (p[k], v) for k, v in switches.items() if k in explicit and p[k] != v}
    if clash:
        listed = ", ".join(f"{k} = {mine!r} (the method fixes {fixed!r})"
                           for k, (mine, fixed) in sorted(clash.items()))
        raise ParameterError(f"method {method.key!r} (Table 4 row {method.row!r}) switches "
                             f"{', '.join(sorted(clash))}, but the run sets {listed}: remove "
                             f"the value from the run file, or distil another method")
    preset = preset_values(p["preset"])

    def value(name: str) -> Any:
        if name in switches:
            return switches[name]
        return p[name] if name in p else preset[name]

    return value


def distill_config(p: Mapping[str, Any], method: Method | None = None, *,
                   t2i: bool = False) -> DistillConfig:
    """Algorithm 1's config for the run ``p`` with ``method``'s switches (:func:`method_values`).

    A fidelity switch at its "from fidelity" value (``''``, or 0 for learning rates and the
    evaluation EMA decay; :data:`scflow.repro.presets.FIDELITY_SWITCHES`) takes the value of the
    ``fidelity`` side. ``t2i`` reads the text-to-image students' parameters (``t2i_guidance``,
    ``t2i_warmup_rf``, ``t2i_warmup_bi``) and the side's text-to-image discriminator head.
    """
    v = method_values(p, method)
    switches = {field: None if v(name) == FIDELITY_SWITCHES[name] else v(name)
                for name, field in FIDELITY_FIELDS.items()}
    fidelity = make_fidelity(v("fidelity"), t2i=t2i, huber_c=v("huber_c"),
                             grid_points=v("grid_points"), **switches)
    prefix = "t2i_" if t2i else ""
    return DistillConfig(
        fidelity=fidelity, lambda_gan=v("lambda_gan"), lambda_rf=v("lambda_rf"),
        lambda_bi=v("lambda_bi"), t_trunc=v("t_trunc"), t_skip=v("t_skip"),
        warmup_gan=v("warmup_gan"), warmup_rf=v(f"{prefix}warmup_rf"),
        warmup_bi=v(f"{prefix}warmup_bi"), target_decay=v("target_ema_decay"),
        r1_gamma=v("r1_gamma"), batch_size=v("distill_batch"), guidance=v(f"{prefix}guidance"),
        disc_width=v("disc_width"), seed=v("seed"), mixed_precision=v("mixed_precision"),
        ckpt_every=v("ckpt_every"), lr_schedule=v("lr_schedule"),
        total_steps=0 if v("lr_schedule") == "constant" else v(f"{prefix}distill_steps"),
        eval_ema_warmup=v("eval_ema_warmup"))
