"""Why `make reproduce` runs two notebooks at once: throughput of 2 x 1-thread vs 1 x 2-thread.

Times the full SCFlow update (:class:`scflow.trainer.Distiller`, every loss term on, the mini
preset's net and batch, random 4x8x8 latents) in two set-ups, measured in one run:

- ``serial``: one process with ``--cores`` threads does ``steps`` updates;
- ``parallel``: ``--cores`` processes with one thread each do ``steps`` updates each, at once.

and prints updates per second of both and their ratio (``parallel / serial`` > 1 means the
batch runner's ``--jobs`` finishes a grid sooner than running notebooks one by one with all
threads). Each set-up is one subprocess call of this file with ``--worker``.

    .venv/bin/python benchmarks/bench_jobs.py [--steps 20] [--cores 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere


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
    args = ap.parse_args()
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
