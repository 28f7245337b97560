"""Why `make reproduce` runs two notebooks at once: throughput of 2 x 1-thread vs 1 x 2-thread.

Times the full SCFlow update (:class:`scflow.trainer.Distiller`, every loss term on, the mini
preset's net and batch, random 4x8x8 latents) in two set-ups, measured in one run:

- ``serial``: one process with ``--cores`` threads does ``steps`` updates;
- ``parallel``: ``--cores`` processes with one thread each do ``steps`` updates each, at once.

and prints updates per second of both and their ratio (``parallel / serial`` > 1 means the
batch runner's ``--jobs`` finishes a grid sooner than running notebooks one by one with all
threads). Each set-up is one subprocess call of this file with ``--worker``.

With ``--device cuda`` (or ``--share``) it measures instead how the mini grid's notebooks share one GPU: for
each count in ``--procs``, that many processes (one thread each) build the same Distiller, warm
up, wait for each other, then run full updates for ``--seconds``; it prints the updates/s of
one process and of all together (``--csv`` appends them).

    .venv/bin/python benchmarks/bench_jobs.py [--steps 20] [--cores 2]
    python benchmarks/bench_jobs.py --device cuda [--procs 1,4,8,15] [--seconds 15] [--csv F]
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parent))  # spawned workers import this file


def worker(steps: int) -> None:
    """Build a Distiller like the mini preset's and run ``steps`` updates (after 2 warm-up)."""
    import torch

    from scflow.distill import DistillConfig, LatentData
    from scflow.fidelity import make_fidelity
    from scflow.nets import build_velocity_net
    from scflow.repro.presets import PRESETS
    from scflow.trainer import Distiller

    p = PRESETS["mini"]
    torch.manual_seed(0)
    teacher = build_velocity_net(p["teacher_arch"], sample_size=8, channels=4)
    cfg = DistillConfig(fidelity=make_fidelity("paper"), batch_size=p["distill_batch"],
                        warmup_rf=0, warmup_bi=0)
    d = Distiller(teacher, LatentData(torch.randn(512, 4, 8, 8)), cfg, device="cpu")
    d.train(2)
    d.train(steps)


def share_worker(barrier, results, seconds: float, variant: str, device: str) -> None:
    """One process sharing the device: the mini Distiller, 3 warm-up updates, then a timed window."""
    import torch
    from bench_distill_step import resolve

    from scflow.distill import DistillConfig, LatentData
    from scflow.fidelity import make_fidelity
    from scflow.nets import build_velocity_net
    from scflow.repro.presets import PRESETS
    from scflow.trainer import Distiller

    torch.set_num_threads(1)
    p = PRESETS["mini"]
    torch.manual_seed(0)
    mp, compile_, speed = resolve(variant, "no", 10)
    teacher = build_velocity_net(p["teacher_arch"], sample_size=8, channels=4)
    cfg = DistillConfig(fidelity=make_fidelity("paper"), batch_size=p["distill_batch"],
                        warmup_rf=0, warmup_bi=0, mixed_precision=mp)
    d = Distiller(teacher, LatentData(torch.randn(512, 4, 8, 8)), cfg, device=device,
                  compile=compile_, speed=speed)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    d.train(3)
    sync()
    barrier.wait(timeout=300)  # every process warm: the windows overlap
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        d.train_step()
        n += 1
    sync()
    results.put((n, time.perf_counter() - t0))


def share(procs: list[int], seconds: float, variant: str, csv_path: str, device: str) -> None:
    """Updates/s of 1 and of n processes sharing the device, for each n in ``procs``."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # CUDA needs fresh processes
    print(f"# bench_jobs on {device}: full SCFlow updates of the mini preset's net and batch, "
          f"variant {variant}, processes sharing the device, {seconds:.0f} s windows")
    for n in procs:
        barrier, results = ctx.Barrier(n), ctx.Queue()
        ps = [ctx.Process(target=share_worker, args=(barrier, results, seconds, variant, device))
              for _ in range(n)]
        for p in ps:
            p.start()
        try:
            got = [results.get(timeout=seconds + 360) for _ in range(n)]
        except queue.Empty:
            print(f"{n:3d} processes: a worker failed or hung; stopping", flush=True)
            for p in ps:
                p.terminate()
            return
        for p in ps:
            p.join()
        rates = [k / s for k, s in got]
        total = sum(rates)
        print(f"{n:3d} processes: {total:8.1f} updates/s together, "
              f"{min(rates):.1f}-{max(rates):.1f} per process", flush=True)
        if csv_path:
            new = not Path(csv_path).exists()
            with open(csv_path, "a") as fh:
                if new:
                    fh.write("procs,variant,seconds,updates_per_s_total,updates_per_s_min,"
                             "updates_per_s_max\n")
                fh.write(f"{n},{variant},{seconds},{total:.3f},{min(rates):.3f},"
                         f"{max(rates):.3f}\n")


def timed(n_procs: int, threads: int, steps: int) -> float:
    """Wall seconds for ``n_procs`` workers with ``threads`` threads each, started together."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--worker", "--steps", str(steps)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, env=env) for _ in range(n_procs)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a worker failed")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed updates per process")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--share", action="store_true",
                    help="the sharing measurement on the CPU too (a check of the script)")
    ap.add_argument("--procs", default="1,4,8,15", help="cuda: process counts to try")
    ap.add_argument("--seconds", type=float, default=15.0, help="cuda: timed window")
    ap.add_argument("--variant", default="eager", help="cuda: a bench_distill_step variant")
    ap.add_argument("--csv", default="", help="cuda: append the rows to this CSV file")
    args = ap.parse_args()
    if args.device == "cuda" or args.share:
        share([int(n) for n in args.procs.split(",")], args.seconds, args.variant, args.csv,
              args.device)
        return
    if args.worker:
        worker(args.steps)
        return
    serial = timed(1, args.cores, args.steps)
    parallel = timed(args.cores, 1, args.steps)
    ups = args.steps / serial, args.cores * args.steps / parallel
    print(f"# bench_jobs: full SCFlow update, mini preset's net and batch, {args.cores} cores "
          f"(process start-up and 2 warm-up updates included in both)")
    print(f"serial   1 process x {args.cores} threads: {ups[0]:.2f} updates/s")
    print(f"parallel {args.cores} processes x 1 thread: {ups[1]:.2f} updates/s")
    print(f"ratio parallel / serial: {ups[1] / ups[0]:.2f}")


if __name__ == "__main__":
    main()
