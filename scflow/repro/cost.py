"""A run's cost before it starts: time from measured costs per update and per sample, memory
from the sizes it must hold at once.

The time is an order of magnitude, meant to catch a typo such as ``distill_steps: 10**12``
before it starts: each notebook's updates and samples times the costs of :data:`REFERENCE`,
measured once on the development machine (2-core CPU, one thread per notebook, the mini nets
and sizes; README "Timings"), linear in the batch size. Other nets, resolutions or devices
are not modelled, and cached parts (the shipped autoencoder and teacher) are counted as if
trained. The memory counts what is certainly held at once: the decoded evaluation samples of
every NFE (:func:`scflow.evaluate.evaluate_nfe` keeps them for the figures), the training
images, and the loss history (one entry per update); a run that cannot fit in this machine's
memory is refused by the runner before it starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

REFERENCE = {
    "full_update_s": 0.31,  # one full SCFlow update, unet_small, batch 32 (the budget study's)
    "cd_update_s": 0.12,  # one CD-only update, same net and batch
    "teacher_update_s": 0.22,  # one Eq. 1 update of unet_small at batch 64 (3,000 in 11 min)
    "sample_step_s": 0.0018,  # one sample through one Euler step, decoded and scored
    # (55 s per student evaluation at NFE 1, 2, 4, 8, 16 on 1,000 samples)
}
HISTORY_BYTES_PER_UPDATE = 500  # one loss-history entry (a dict of ~8 floats), measured
EMBEDDED_IMAGES = {"digits": 1797, "mnist": 10_000}  # the images of the shipped datasets


def _eval_seconds(p: Mapping[str, Any], methods: int = 1) -> float:
    draws = p.get("eval_draws", 1)  # every noise set of the evaluation bank
    return methods * draws * p["n_eval"] * sum(p["nfe_list"]) * REFERENCE["sample_step_s"]


def estimate_seconds(notebook: str, p: Mapping[str, Any]) -> float:
    """Wall seconds of one run of ``notebook`` with values ``p`` at the reference costs."""
    r, n = REFERENCE, notebook[:2]
    batch = p.get("distill_batch", 32) / 32
    if n == "01":
        teacher = 0 if p.get("teacher_checkpoint") else p["teacher_steps"] * p["teacher_batch"] / 64
        return teacher * r["teacher_update_s"] + _eval_seconds(p)
    if n == "02":
        return p["distill_steps"] * batch * r["cd_update_s"] + _eval_seconds(p)
    if n in ("03", "04", "05"):
        return p["distill_steps"] * batch * r["full_update_s"] + _eval_seconds(p)
    if n == "06":
        pairs = p["rectified_pairs"] * p["rectified_euler_steps"] * r["sample_step_s"]
        updates = (p["rectified_reflow_steps"] + p["rectified_distill_steps"]) \
            * p["rectified_batch"] / 32 * r["cd_update_s"]
        return pairs + updates + _eval_seconds(p, methods=2)
    if n == "08":
        teachers = (p["t2i_teacher_steps"] + p["reflow_steps"]) * r["teacher_update_s"]
        pairs = 2 * p["reflow_pairs"] * p["reflow_euler_steps"] * r["sample_step_s"]  # CFG: 2x
        students = 3 * p["t2i_distill_steps"] * batch * r["full_update_s"]
        return teachers + pairs + students + _eval_seconds(p, methods=5)
    if n == "09":
        runs = len(p["study_methods"]) * len(p["study_schedules"])
        return runs * (max(p["study_budgets"]) * batch * r["full_update_s"]
                       + _eval_seconds(p, methods=len(p["study_budgets"])))
    return 0.0


def estimate_bytes(notebook: str, p: Mapping[str, Any], n_images: int | None = None) -> int:
    """Bytes a run must hold at once (samples of every NFE, training images, loss history).

    ``n_images``: the training images (default: a shipped dataset's count, or ``data_limit``).
    """
    dataset = p.get("dataset", "digits")
    channels = 1 if dataset in EMBEDDED_IMAGES else 3
    image = channels * p.get("resolution", 32) ** 2 * 4  # float32
    n_images = n_images if n_images is not None else EMBEDDED_IMAGES.get(dataset, 1797)
    if p.get("data_limit"):
        n_images = min(n_images, p["data_limit"])
    samples = p.get("n_eval", 0) * image * len(p.get("nfe_list", ()))
    steps = {"02": "distill_steps", "03": "distill_steps", "04": "distill_steps",
             "05": "distill_steps", "08": "t2i_distill_steps"}.get(notebook[:2])
    history = p[steps] * HISTORY_BYTES_PER_UPDATE if steps else 0
    if notebook[:2] == "09":
        history = max(p["study_budgets"]) * HISTORY_BYTES_PER_UPDATE
    return samples + n_images * image + history


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def human_time(seconds: float) -> str:
    """``42 s``, ``12 min``, ``3.5 h``, ``2.1 days`` or ``3e+06 years``."""
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size if unit != "min" else seconds >= 120:
            value = seconds / size
            return f"{value:.3g} {unit}" if value < 1e4 else f"{value:.1e} {unit}"
    return f"{seconds:.0f} s"


def human_bytes(n: float) -> str:
    """``512 B`` ... ``1.5 TiB``, ``3e+06 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB" if n < 1e4 else f"{n:.1e} TiB"


def folder_images(p: Mapping[str, Any]) -> int | None:
    """How many training images a folder dataset has (None: the digits, or no folder)."""
    if p.get("dataset") != "folder" or not p.get("data_dir"):
        return None
    from scflow.data import image_files

    try:
        return len(image_files(p["data_dir"]))
    except FileNotFoundError:
        return None


def describe(notebook: str, p: Mapping[str, Any]) -> str:
    """``~3.2 h, 1.1 GiB (...)``: the estimates for one run of ``notebook`` with values ``p``."""
    return (f"~{human_time(estimate_seconds(notebook, p))}, "
            f"{human_bytes(estimate_bytes(notebook, p, folder_images(p)))} "
            f"(time at the reference costs, nothing cached)")
