"""Cost of one SCFlow distillation update: FLOPs, time, FLOP/s and % of the measured matmul peak.

For each net (``--nets``), update (``cd``: CD only; ``full``: every loss term, warm-ups 0, and
the discriminator update) and speed variant (``--variants``, :mod:`scflow.speed`), one row:

- FLOPs per update, counted with FlopCounterMode (:mod:`scflow.flops`) on the library's own step
  (``Distiller.train_step``, the first warm-up update of each eager variant; a variant that
  counts other FLOPs says so in its note) at the run's batch, and scaled to batch 32 (every
  counted op is per example); compiled variants do the eager variants' FLOPs;
- ms per update: the median over ``--blocks`` blocks of ``--calls`` back-to-back updates (CPU:
  process CPU time, robust to other jobs; GPU: wall time, synchronised around each block);
- achieved GFLOP/s and its % of a dense matmul's rate measured in the same process, on the same
  device, in the variant's compute dtype (fp32, tf32 or bf16);
- peak memory (GPU: allocated peak of the row; CPU: the process's maximum RSS so far);
- host synchronisations in one more update (GPU: torch's sync debug mode), the speed-up over the
  ``eager`` row, and the largest relative difference of any loss to the ``eager`` row's over the
  same updates (the switches change losses by rounding only; bf16 by bf16 rounding).

``eager_again`` is the eager step measured once more (put it after the other variants): its
speed-up over ``eager`` is what the order of measurement alone moves a row (warm caches, the
allocator, clocks), the spread within which no switch's speed-up means anything.

Nets: ``mini`` = the mini preset's ``unet_small`` on 4x8x8 latents, fp32, batch 32; ``paper`` =
``unet_lfm_celeba`` (LFM's CelebA-HQ net, 153M parameters) on 4x32x32 latents, bf16, batch 32 on
a GPU and ``--paper-batch`` (default 2) on the CPU, where one update takes seconds. On the CPU
the ``mini`` net is also compared with a sequential reading of Algorithm 1
(``seq_reference.py``; ``--no-seq`` skips it).

    .venv/bin/python benchmarks/bench_distill_step.py [--nets mini,paper] [--variants eager,...]
        [--device cpu|cuda] [--threads 1] [--csv FILE] [--profile FILE] [--deadline-s S]
"""

from __future__ import annotations

import argparse
import csv
import gc
import math
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from scflow.distill import DistillConfig, LatentData  # noqa: E402
from scflow.fidelity import make_fidelity  # noqa: E402
from scflow.flops import (  # noqa: E402
    UpdateCost,
    count_flops,
    matmul_peak,
    peak_memory_gib,
    time_per_call,
)
from scflow.nets import build_velocity_net, count_parameters  # noqa: E402
from scflow.speed import SpeedConfig  # noqa: E402

REF_BATCH = 32
NETS = {"mini": ("unet_small", 8, "no"), "paper": ("unet_lfm_celeba", 32, "bf16")}
_ALL = {"channels_last": True, "optimizer": "fused", "log_every": 0, "cudnn_benchmark": True,
        "tf32": True}
# name -> (mixed precision or None for the net's own, compile, SpeedConfig fields);
# log_every 0 means "--calls" (one loss read per timed block)
VARIANTS: dict[str, tuple[str | None, str, dict]] = {
    "eager": (None, "no", {}),
    "eager_again": (None, "no", {}),  # eager once more: the drift with the order of measurement
    "channels_last": (None, "no", {"channels_last": True}),
    "foreach_adamw": (None, "no", {"optimizer": "foreach"}),
    "fused_adamw": (None, "no", {"optimizer": "fused"}),
    "no_sync": (None, "no", {"log_every": 0}),
    "cudnn_benchmark": (None, "no", {"cudnn_benchmark": True}),
    "tf32": (None, "no", {"tf32": True}),
    "bf16": ("bf16", "no", {}),
    "compile": (None, "torch", {}),
    "compile_max_autotune": (None, "torch", {"compile_mode": "max-autotune"}),
    "compile_cudagraphs": (None, "torch", {"compile_mode": "reduce-overhead"}),
    "all_eager": (None, "no", _ALL),
    "all": (None, "torch", _ALL),
}
COLUMNS = ["device", "device_name", "torch", "net", "arch", "params_m", "latents", "batch",
           "update", "variant", "precision", "gflop_per_update", "gflop_at_batch_32",
           "ms_per_update", "gflop_per_s", "peak_gflop_per_s", "pct_of_peak", "peak_mem_gib",
           "host_syncs", "speedup_vs_eager", "max_rel_loss_diff", "note"]


def resolve(variant: str, net_precision: str, calls: int) -> tuple[str, str, SpeedConfig]:
    """(mixed_precision, compile, SpeedConfig) of a named variant."""
    mp, compile_, fields = VARIANTS[variant]
    fields = {k: (calls if k == "log_every" and v == 0 else v) for k, v in fields.items()}
    return mp or net_precision, compile_, SpeedConfig(**fields)


def host_syncs(d) -> float:
    """Host synchronisations torch reports in one update (CUDA only; NaN on the CPU)."""
    if d.device.type != "cuda":
        return float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            d.train_step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return float(sum("synchroniz" in str(w.message) for w in caught))


def max_rel_diff(logs: list[dict], ref: list[dict] | None) -> float:
    """Largest |a - b| / |b| over the losses both runs read at the same update."""
    if not ref:
        return float("nan")
    out = 0.0
    for a, b in zip(logs, ref, strict=False):
        for k in set(a) & set(b):
            out = max(out, abs(a[k] - b[k]) / max(abs(b[k]), 1e-12))
    return out


def profile_update(d, label: str, path: str) -> None:
    """Append the top ops of one update (by device time on a GPU, CPU time on the CPU)."""
    acts = [torch.profiler.ProfilerActivity.CPU]
    key = "self_cpu_time_total"
    if d.device.type == "cuda":
        acts.append(torch.profiler.ProfilerActivity.CUDA)
        key = "self_device_time_total"
    with torch.profiler.profile(activities=acts) as prof:
        d.train_step()
        if d.device.type == "cuda":
            torch.cuda.synchronize()
    with open(path, "a") as fh:
        fh.write(f"\n## {label}: top ops of one update by {key}\n")
        try:
            table = prof.key_averages().table(sort_by=key, row_limit=20, max_name_column_width=60)
        except (AttributeError, KeyError):  # torch before the "device" names
            table = prof.key_averages().table(sort_by=key.replace("device", "cuda"), row_limit=20,
                                              max_name_column_width=60)
        fh.write(table)
        fh.write("\n")


class NetBench:
    """Rows of one net: FLOPs counted once per update kind, peaks once per precision."""

    def __init__(self, net: str, args: argparse.Namespace) -> None:
        self.net, self.args = net, args
        self.arch, self.side, self.precision = NETS[net]
        cpu = args.device == "cpu"
        self.batch = args.batch or (args.paper_batch if net == "paper" and cpu else REF_BATCH)
        torch.manual_seed(0)
        self.teacher = build_velocity_net(self.arch, sample_size=self.side)
        g = torch.Generator().manual_seed(1)
        self.data = LatentData(torch.randn(256, 4, self.side, self.side, generator=g))
        self.flops: dict[str, int] = {}
        self.peaks: dict[str, float] = {}
        self.eager: dict[str, tuple[list[dict], float]] = {}

    def distiller(self, kind: str, mp: str, compile_: str, speed: SpeedConfig):
        from scflow.trainer import Distiller

        off = {} if kind == "full" else {"lambda_gan": 0.0, "lambda_rf": 0.0, "lambda_bi": 0.0}
        cfg = DistillConfig(fidelity=make_fidelity(self.args.fidelity), batch_size=self.batch,
                            mixed_precision=mp, warmup_rf=0, warmup_bi=0, **off)
        torch.manual_seed(0)
        return Distiller(self.teacher, self.data, cfg, device=self.args.device,
                         compile=compile_, speed=speed)

    def peak(self, precision: str) -> float:
        if precision not in self.peaks:
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            saved = torch.get_float32_matmul_precision()
            torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
            try:
                self.peaks[precision] = matmul_peak(self.args.device, dtype)
            finally:
                torch.set_float32_matmul_precision(saved)
        return self.peaks[precision]

    def row(self, kind: str, variant: str) -> dict:
        a, dev = self.args, torch.device(self.args.device)
        mp, compile_, speed = resolve(variant, self.precision, a.calls)
        prec = "bf16" if mp == "bf16" else ("tf32" if speed.tf32 else "fp32")
        if compile_ != "no" and kind == "full":  # the variant's first row
            from torch import _dynamo

            _dynamo.reset()  # fresh guards per variant: no silent fall-back to eager
        if kind not in self.flops and compile_ != "no":  # the count needs an eager step
            self.flops[kind] = count_flops(self.distiller(kind, mp, "no", SpeedConfig()).train_step)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        d = self.distiller(kind, mp, compile_, speed)
        logs: list[dict] = []

        def step() -> None:
            logs.append(d.train_step())

        warm = a.warmup if a.warmup is not None else (3 if compile_ != "no" else 1)
        note = ""
        if compile_ == "no":  # the first warm-up update, counted (in every eager variant: the
            n = count_flops(step)  # counter changes rounding, so all start from the same update)
            warm -= 1
            if self.flops.setdefault(kind, n) != n:
                note = f"FLOPs {n / 1e9:.4g} G != the first variant's"
        secs = time_per_call(step, dev, calls=a.calls, blocks=a.blocks, warmup=max(warm, 0))
        mem = peak_memory_gib(dev)
        syncs = host_syncs(d)
        if a.profile and kind == "full" and variant in (a.variants[0], a.variants[-1]):
            profile_update(d, f"{self.arch} batch {self.batch}, {kind} update, {variant}",
                           a.profile)
        if variant == "eager":
            self.eager[kind] = (logs, secs)
        ref_logs, ref_secs = self.eager.get(kind, (None, float("nan")))
        cost = UpdateCost(self.flops[kind], secs, self.peak(prec), mem).row()
        flops_ref = self.flops[kind] * REF_BATCH / self.batch
        return {"precision": prec, **{k: v for k, v in cost.items()},
                "gflop_at_batch_32": flops_ref / 1e9, "peak_gflop_per_s": self.peak(prec) / 1e9,
                "host_syncs": syncs, "speedup_vs_eager": ref_secs / secs,
                "max_rel_loss_diff": max_rel_diff(logs, ref_logs), "note": note}


def measure_net(net: str, args: argparse.Namespace, t_start: float, out: list[dict]) -> None:
    """Append one row per (update, variant) of ``net`` to ``out`` (and to ``--csv``)."""
    b = NetBench(net, args)
    if b.batch <= 0:
        print(f"{net}: skipped (--paper-batch 0)")
        return
    dev = torch.device(args.device)
    meta = {"device": dev.type, "device_name": torch.cuda.get_device_name() if dev.type == "cuda"
            else f"cpu, {torch.get_num_threads()} thread(s)", "torch": torch.__version__,
            "net": net, "arch": b.arch, "params_m": count_parameters(b.teacher) / 1e6,
            "latents": f"4x{b.side}x{b.side}", "batch": b.batch}
    for variant in args.variants:  # in the given order, so that a deadline cuts the last ones
        for kind in ("full", "cd"):  # the full update first: the one that matters most
            row = {**meta, "update": kind, "variant": variant}
            if time.perf_counter() - t_start > args.deadline_s:
                row["note"] = "skipped: --deadline-s reached"
            else:
                saved = (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision())
                try:
                    row.update(b.row(kind, variant))
                except Exception as err:  # noqa: BLE001 (a failed variant is a row; go on)
                    traceback.print_exc()
                    row["note"] = f"{type(err).__name__}: {err}"[:160].replace("\n", " ")
                finally:  # the switches' process-wide flags do not leak into the next row
                    torch.backends.cudnn.benchmark = saved[0]
                    torch.set_float32_matmul_precision(saved[1])
                    b.teacher.to(memory_format=torch.contiguous_format)  # channels_last's
                    gc.collect()
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
            out.append(row)
            print_row(row)
            if args.csv:
                append_csv(args.csv, row)


def _fmt(v: object, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec) if isinstance(v, float | int) else str(v)


def print_row(r: dict) -> None:
    print(f"{r['arch']:16s} b{r['batch']:<3} {r['update']:4s} {r['variant']:21s} "
          f"{_fmt(r.get('precision'), 's'):4s} {_fmt(r.get('gflop_per_update'), '10.1f')} "
          f"{_fmt(r.get('gflop_at_batch_32'), '10.1f')} {_fmt(r.get('ms_per_update'), '9.2f')} "
          f"{_fmt(r.get('gflop_per_s'), '9.1f')} {_fmt(r.get('pct_of_peak'), '6.1f')} "
          f"{_fmt(r.get('peak_mem_gib'), '6.2f')} {_fmt(r.get('host_syncs'), '4.0f')} "
          f"{_fmt(r.get('speedup_vs_eager'), '5.2f')} {_fmt(r.get('max_rel_loss_diff'), '8.1e')}"
          f" {r.get('note', '')}", flush=True)


def append_csv(path: str, row: dict) -> None:
    new = not Path(path).exists()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="mini,paper", help=f"comma-separated, of {list(NETS)}")
    ap.add_argument("--variants", default="eager", help=f"comma-separated, of {list(VARIANTS)}")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    ap.add_argument("--batch", type=int, default=0, help="every net's batch (default: 32; the "
                    "paper-scale net on the CPU: --paper-batch)")
    ap.add_argument("--paper-batch", type=int, default=2,
                    help="the paper-scale net's batch on the CPU (0: skip it)")
    ap.add_argument("--fidelity", default="paper", choices=("paper", "code"))
    ap.add_argument("--calls", type=int, default=None,
                    help="updates per timed block (default: 5 on a GPU, 3 / 1 for mini / paper "
                         "on the CPU); also no_sync's log_every")
    ap.add_argument("--blocks", type=int, default=None, help="timed blocks (default 3; CPU "
                    "paper-scale: 2)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed updates first, the counted one included (default 1; compiled: 3)")
    ap.add_argument("--compile", action="store_true", help="add the 'compile' variant")
    ap.add_argument("--no-seq", action="store_true", help="skip the sequential reference (CPU)")
    ap.add_argument("--steps", type=int, default=6, help="timed rounds of the sequential part")
    ap.add_argument("--csv", default="", help="append the rows to this CSV file")
    ap.add_argument("--profile", default="", help="append top-op tables of the first and last "
                    "variant's full update to this file")
    ap.add_argument("--deadline-s", type=float, default=math.inf,
                    help="skip the variants that would start after this many seconds")
    args = ap.parse_args(argv)
    args.nets, args.variants = args.nets.split(","), args.variants.split(",")
    if args.compile and "compile" not in args.variants:
        args.variants.append("compile")
    for name, known in (("nets", NETS), ("variants", VARIANTS)):
        bad = [v for v in getattr(args, name) if v not in known]
        if bad:
            ap.error(f"--{name}: unknown {bad}; choose from {list(known)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA GPU is visible to torch")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu, t_start, rows = args.device == "cpu", time.perf_counter(), []
    base = {k: getattr(args, k) for k in ("calls", "blocks")}
    if cpu and "mini" in args.nets and not args.no_seq:
        from seq_reference import compare_sequential

        b = NetBench("mini", args)
        fidelity = make_fidelity("code", student_lr=1e-4)  # as the sequential reference always ran
        full = DistillConfig(fidelity=fidelity, batch_size=b.batch, warmup_rf=0, warmup_bi=0)
        cd = DistillConfig(fidelity=fidelity, batch_size=b.batch, lambda_gan=0.0, lambda_rf=0.0,
                           lambda_bi=0.0, warmup_rf=0, warmup_bi=0)
        compare_sequential(b.teacher, b.data, full, cd, args.steps, 1,
                           f"{b.arch}, batch {b.batch}, 4x8x8 latents, torch {torch.__version__}, "
                           f"cpu ({args.threads} thread(s))")
    print(f"\ncost of one update; FLOPs counted at the row's batch and scaled to 32; CPU: "
          f"process CPU time, {args.threads} thread(s); GPU: wall time")
    print(f"{'net':16s} {'batch':4s} {'upd':4s} {'variant':21s} {'prec':4s} {'GFLOP/upd':>10s} "
          f"{'GFLOP@32':>10s} {'ms/upd':>9s} {'GFLOP/s':>9s} {'%peak':>6s} {'memGiB':>6s} "
          f"{'sync':>4s} {'x':>5s} {'lossdiff':>8s}")
    for net in args.nets:
        paper_cpu = cpu and net == "paper"
        args.calls = base["calls"] or (1 if paper_cpu else (3 if cpu else 5))
        args.blocks = base["blocks"] or (2 if paper_cpu else 3)
        measure_net(net, args, t_start, rows)
    peaks = sorted({(r["arch"], r["precision"], r["peak_gflop_per_s"]) for r in rows
                    if "peak_gflop_per_s" in r})
    print("measured matmul peaks: " + "; ".join(f"{a} {p}: {v:.0f} GFLOP/s" for a, p, v in peaks))


if __name__ == "__main__":
    main()
