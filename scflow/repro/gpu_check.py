"""``make gpu-check``: what to run first on a new GPU machine (one command, a pass/fail table).

On ``cuda``, in a temporary cache (nothing of the project's cache is read or written):
1. a smoke-to-mini teacher: the smoke autoencoder and data, the mini net ``unet_small``
   trained ``--teacher-steps`` steps (Eq. 1), its FID at NFE 1 and 2;
2. one full SCFlow student (every loss term, Algorithm 1) from it, ``--student-steps`` updates,
   in fp32 and in bf16, each with its FID at NFE 1 and 2 (the Frechet distance of
   :mod:`scflow.metrics.fid` on the digits features);
3. the time of one CD-only and one full SCFlow update (batch 32) of the mini net (fp32, 4x8x8
   latents) and of the paper-scale net ``unet_lfm_celeba`` (bf16, 4x32x32 latents), with its
   FLOPs (counted on the first warm-up update, :mod:`scflow.flops`), the achieved TFLOP/s and
   their % of a dense matmul's rate measured in the same run, and the peak GPU memory (a table
   after the checks).
A check passes when it ran on the GPU and every loss and FID is finite. Exit code 0: all
passed; 1: a check failed; 2: no CUDA GPU (within seconds, before any work).

What it measured on an H100 (its time, the update times at both scales): docs/GPU.md.

    python -m scflow.repro.gpu_check [--teacher-steps 600] [--student-steps 300] [--time-steps 10]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

NO_GPU_EXIT = 2


def no_gpu_message() -> str | None:
    """Why this machine cannot run the check (None when a CUDA GPU is visible)."""
    import torch

    if torch.cuda.is_available():
        return None
    build = torch.version.cuda or "none (a CPU-only torch build)"
    return (f"gpu-check: FAILED: no CUDA GPU is visible to torch {torch.__version__} "
            f"(its CUDA: {build}). Run it on a machine with an NVIDIA GPU and a CUDA build "
            "of torch (README, 'Running on a GPU').")


def _finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


_PEAKS: dict[tuple[str, str], float] = {}  # (device, precision) -> matmul FLOP/s, once per run


def time_updates(arch: str, sample_size: int, mixed_precision: str, steps: int,
                 batch: int = 32, full: bool = True, compile: str = "no",
                 device: str = "cuda") -> dict[str, float]:
    """Milliseconds per distillation update (median of ``steps`` after 3 warm-ups), its FLOPs.

    ``full``: every loss term and the discriminator update; else CD only. Random weights and
    latents: the timing does not depend on them. The first warm-up update is counted with
    FlopCounterMode (eager only: ``gflop`` is NaN when compiled); ``tflop_s`` and ``pct_peak``
    compare it with a dense matmul in the update's dtype measured on the same device.
    """
    import torch

    from scflow.distill import DistillConfig, LatentData
    from scflow.fidelity import make_fidelity
    from scflow.flops import count_flops, matmul_peak
    from scflow.nets import build_velocity_net
    from scflow.repro.methods import TABLE4
    from scflow.trainer import Distiller

    torch.manual_seed(0)
    teacher = build_velocity_net(arch, sample_size=sample_size)
    data = LatentData(torch.randn(256, 4, sample_size, sample_size))
    method = TABLE4["scflow" if full else "cd"]
    cfg = DistillConfig(fidelity=make_fidelity("paper"), batch_size=batch,
                        mixed_precision=mixed_precision, warmup_rf=0, warmup_bi=0,
                        **method.switches)
    d = Distiller(teacher, data, cfg, device=device, compile=compile)
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []

    def step(train: Callable[[], dict[str, float]] = d.train_step) -> None:
        losses.append(train()["total"])

    flops = count_flops(step) if compile == "no" else float("nan")  # warm-up update 1
    for i in range(steps + 2):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    key = (device, mixed_precision)
    if key not in _PEAKS:
        dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float32
        _PEAKS[key] = matmul_peak(device, dtype, n=None if cuda else 512)
    ms = 1000 * times[len(times) // 2]
    tflop_s = flops / (ms / 1000) / 1e12
    out = {"ms": ms, "peak_gib": peak, "finite": float(_finite(losses)), "gflop": flops / 1e9,
           "tflop_s": tflop_s, "peak_tflop_s": _PEAKS[key] / 1e12,
           "pct_peak": 100 * tflop_s * 1e12 / _PEAKS[key]}
    del step, d, teacher
    if cuda:
        torch.cuda.empty_cache()
    return out


def _fid_row(net: Any, s: Any, extractor: Any, z1: Any, nfes: list[int]) -> dict[int, float]:
    from scflow.evaluate import evaluate_nfe

    _, rows = evaluate_nfe(net, s.codec, z1, nfes, s.data.images, extractor, method="check")
    return {r["nfe"]: r["value"] for r in rows if r["metric"] == "fid"}


TIMED = (("unet_small", 8, "no"), ("unet_lfm_celeba", 32, "bf16"))  # (net, latent side, precision)


def run_checks(args: argparse.Namespace, device: str = "cuda",
               timed: Sequence[tuple[str, int, str]] = TIMED,
               timings: list[dict[str, Any]] | None = None
               ) -> list[tuple[str, bool, float, str]]:
    """Every check of the module docstring; rows (name, passed, seconds, detail).

    ``device="cpu"`` (with tiny sizes) runs the same code path without a GPU, for tests.
    ``timings`` (if given) receives one row per timed update for :func:`timing_table`.
    """
    from scflow.evaluate import bank_noise
    from scflow.repro.configs import distill_config
    from scflow.repro.experiment import distill, make_extractor, prepare
    from scflow.repro.methods import TABLE4
    from scflow.repro.presets import preset_values

    rows: list[tuple[str, bool, float, str]] = []
    state: dict[str, Any] = {}

    def check(name: str, fn: Callable[[], tuple[bool, str]]) -> None:
        t0 = time.perf_counter()
        try:
            ok, detail = fn()
        except Exception as err:  # noqa: BLE001 (a failed check is a row, the others still run)
            ok, detail = False, f"{type(err).__name__}: {err}"[:200]
            traceback.print_exc()
        rows.append((name, ok, time.perf_counter() - t0, detail))
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)

    nfes = [1, 2]
    p = {**preset_values("smoke"), "device": device, "teacher_arch": "unet_small",
         "teacher_steps": args.teacher_steps, "teacher_batch": 64, "classifier_steps": 300,
         "n_eval": args.n_eval, "nfe_list": nfes, "distill_steps": args.student_steps,
         "distill_batch": 32, "warmup_rf": args.student_steps // 3,
         "warmup_bi": args.student_steps // 3, "ckpt_every": 0}

    def teacher() -> tuple[bool, str]:
        s = state["s"] = prepare(p, progress=False)
        state["ex"] = make_extractor(p, s.device)
        state["z1"] = bank_noise(0, p["n_eval"], s.latent_shape)
        on_gpu = next(s.teacher.parameters()).device.type == device
        fid = _fid_row(s.teacher, s, state["ex"], state["z1"], nfes)
        return on_gpu and _finite(fid.values()), f"on {s.device}, FID {_fmt(fid)}"

    check(f"teacher unet_small, {args.teacher_steps} steps, fp32", teacher)
    for mp in ("no", "bf16"):
        def student(mp: str = mp) -> tuple[bool, str]:
            s = state["s"]
            cfg = distill_config({**p, "mixed_precision": mp}, TABLE4["scflow"])
            d, hist = distill(s, cfg, args.student_steps, progress=False)
            losses = [v for h in hist for k, v in h.items() if k != "step"]
            fid = _fid_row(d.eval_ema, s, state["ex"], state["z1"], nfes)
            on_gpu = next(d.student.parameters()).device.type == device
            ok = on_gpu and len(hist) == args.student_steps and _finite(losses + list(fid.values()))
            return ok, f"{len(hist)} updates, last L_total {hist[-1]['total']:.4g}, FID {_fmt(fid)}"

        check(f"SCFlow student, {args.student_steps} updates, {'fp32' if mp == 'no' else mp}",
              student)
    for arch, size, mp in timed:
        def timing(arch: str = arch, size: int = size, mp: str = mp) -> tuple[bool, str]:
            cd = time_updates(arch, size, mp, args.time_steps, full=False, device=device)
            full = time_updates(arch, size, mp, args.time_steps, full=True, device=device)
            if timings is not None:
                timings.extend({"net": arch, "latents": f"4x{size}x{size}", "precision": mp,
                                "update": kind, **r} for kind, r in (("CD", cd), ("full", full)))
            ok = bool(cd["finite"] and full["finite"])
            return ok, (f"CD {cd['ms']:.1f} ms, full {full['ms']:.1f} ms per update (ratio "
                        f"{full['ms'] / cd['ms']:.2f}), peak {cd['peak_gib']:.1f} / "
                        f"{full['peak_gib']:.1f} GiB")

        check(f"update time {arch}, batch 32, {'fp32' if mp == 'no' else mp}", timing)
    return rows


def timing_table(timings: Sequence[dict[str, Any]]) -> str:
    """The timed updates: ms, FLOPs, TFLOP/s, % of the measured matmul peak, peak memory."""
    lines = [f"{'net':16s} {'latents':8s} {'prec':4s} {'update':6s} {'ms':>7s} "
             f"{'GFLOP':>8s} {'TFLOP/s':>8s} {'peak':>7s} {'%peak':>6s} {'GiB':>5s}"]
    for r in timings:
        prec = "fp32" if r["precision"] == "no" else r["precision"]
        lines.append(f"{r['net']:16s} {r['latents']:8s} {prec:4s} {r['update']:6s} "
                     f"{r['ms']:7.1f} {r['gflop']:8.1f} {r['tflop_s']:8.2f} "
                     f"{r['peak_tflop_s']:7.1f} {r['pct_peak']:6.1f} {r['peak_gib']:5.1f}")
    return "\n".join(lines)


def _fmt(fid: dict[int, float]) -> str:
    return ", ".join(f"NFE {k}: {v:.1f}" for k, v in sorted(fid.items()))


def parse_args(ap: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parsed arguments; sizes must be positive (an error before any work)."""
    args = ap.parse_args(argv)
    for name in ("teacher_steps", "student_steps", "n_eval", "time_steps"):
        if getattr(args, name) < (2 if name == "n_eval" else 1):
            ap.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code (0 pass, 1 a check failed, 2 no GPU)."""
    ap = argparse.ArgumentParser(prog="python -m scflow.repro.gpu_check",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--teacher-steps", type=int, default=600)
    ap.add_argument("--student-steps", type=int, default=300)
    ap.add_argument("--n-eval", type=int, default=1000, help="samples per FID")
    ap.add_argument("--time-steps", type=int, default=10, help="timed updates per net")
    args = parse_args(ap, argv)
    msg = no_gpu_message()
    if msg:
        print(msg, file=sys.stderr)
        return NO_GPU_EXIT
    import torch

    print(f"gpu-check on {torch.cuda.get_device_name()} (torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}, Python {sys.version.split()[0]})", flush=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scflow-gpu-check-") as tmp:
        os.environ["SCFLOW_CACHE"] = tmp  # a clean cache: everything is trained here, on cuda
        timings: list[dict[str, Any]] = []
        rows = run_checks(args, timings=timings)
    print("\nupdate cost, batch 32 (peak: a dense matmul in the update's dtype, this GPU, this run)")
    print(timing_table(timings))
    print(f"\n{'check':52s} {'result':6s} {'s':>6s}  detail")
    for name, ok, secs, detail in rows:
        print(f"{name:52s} {'PASS' if ok else 'FAIL':6s} {secs:6.1f}  {detail}")
    failed = sum(not ok for _, ok, _, _ in rows)
    print(f"\n{len(rows) - failed}/{len(rows)} passed in {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
