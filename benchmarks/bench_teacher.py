"""Teacher throughput on this machine: training steps/s and sampling images/s at NFE 1 vs 25.

Measures, in one run and on the same net (the mini preset's teacher net on 4x8x8 latents):

- training: Eq. 1 loss (:func:`scflow.flow.flow_matching_loss`) + backward + AdamW step at
  batch 64 -> steps/s and images/s;
- sampling: :func:`scflow.samplers.euler_sample` at NFE 1 and NFE 25 -> images/s and their
  ratio (ideally ~25: sampling cost is linear in NFE).

Usage::

    .venv/bin/python benchmarks/bench_teacher.py           # minutes on 2 CPU cores
    .venv/bin/python benchmarks/bench_teacher.py --quick   # seconds (batch 8), smoke check only
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from scflow.flow import flow_matching_loss  # noqa: E402
from scflow.nets import build_velocity_net, count_parameters  # noqa: E402
from scflow.repro.presets import PRESETS  # noqa: E402
from scflow.samplers import euler_sample  # noqa: E402


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1,
          device: torch.device | None = None) -> float:
    """Median seconds per call of ``fn`` after ``warmup`` untimed calls (CUDA-synchronised)."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else None
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def bench(arch: str = "unet_small", batch: int = 64, size: int = 8, channels: int = 4,
          train_steps: int = 20, sample_repeats: int = 5, nfe_high: int = 25,
          seed: int = 0, device: str = "cpu") -> dict[str, float]:
    """Run every measurement once on one freshly built net; returns the numbers."""
    dev = torch.device(device)
    torch.manual_seed(seed)
    net = build_velocity_net(arch, sample_size=size, channels=channels).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.0)
    z0 = torch.randn(batch, channels, size, size, device=dev)

    def train_step() -> None:
        z1 = torch.randn_like(z0)
        t = torch.rand(batch, device=dev)
        loss = flow_matching_loss(net, z0, z1, t)  # Eq. 1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    net.train()
    step_s = timed(train_step, repeats=train_steps, warmup=2, device=dev)
    net.eval()
    z1 = torch.randn(batch, channels, size, size, device=dev)
    # interleaved rounds, so both NFEs see the same machine load (medians over rounds)
    t1, t_hi = [], []
    euler_sample(net, z1, 1)  # warm-up
    for _ in range(sample_repeats):
        t1.append(timed(lambda: euler_sample(net, z1, 1), repeats=5, warmup=0, device=dev))
        t_hi.append(timed(lambda: euler_sample(net, z1, nfe_high), repeats=1, warmup=0,
                          device=dev))
    s1, s_hi = sorted(t1)[len(t1) // 2], sorted(t_hi)[len(t_hi) // 2]
    return {"params_M": count_parameters(net) / 1e6, "train_steps_per_s": 1 / step_s,
            "train_images_per_s": batch / step_s, "sample_nfe1_images_per_s": batch / s1,
            f"sample_nfe{nfe_high}_images_per_s": batch / s_hi, "nfe_speed_ratio": s_hi / s1}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: prints a small table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats: a seconds-long run")
    ap.add_argument("--arch", default=PRESETS["mini"]["teacher_arch"])
    ap.add_argument("--batch", type=int, default=None, help="default 64 (8 with --quick)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = args.batch or (8 if args.quick else 64)
    reps = dict(train_steps=3, sample_repeats=1) if args.quick else {}
    r = bench(args.arch, batch=batch, device=args.device, **reps)
    where = (torch.cuda.get_device_name() if args.device.startswith("cuda")
             else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"# bench_teacher: {args.arch} ({r['params_M']:.2f}M params), batch {batch}, "
          f"4x8x8 latents, torch {torch.__version__}, {args.device} ({where})"
          f"{', QUICK: not for reporting' if args.quick else ''}")
    print(f"{'measurement':<34}{'value':>12}")
    for key, val in r.items():
        if key != "params_M":
            print(f"{key:<34}{val:>12.2f}")


if __name__ == "__main__":
    main()
