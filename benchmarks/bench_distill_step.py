"""Seconds per SCFlow training step: the library's batched step vs a sequential reading.

Measures, at the miniature's size (the mini preset's net and batch, 4x8x8 latents, random data):

- ``cd``: the library step with CD only (lambda_GAN = lambda_RF = lambda_BI = 0);
- ``full``: the library step with every term on (warm-ups 0) plus the discriminator update;
- ``seq``: the same math written here the straightforward way, one network call per term in
  Algorithm 1's reading order (L_CD: teacher, target, student; L_GAN: student on z1, D;
  L_RF: student on z_hat; L_BI: teacher again, target on z_k, student on z_t again; then the
  discriminator with separate real/fake calls);
- ``seq_shared``: sequential again, but sharing what the math shares (one teacher call, the
  student's f(z_t, t) reused by L_BI) -- isolates the gain of batching calls together.

With ``--compile`` the library's ``cd`` and ``full`` steps also run with ``compile="torch"``
(``cd_compiled``, ``full_compiled``; :mod:`scflow.compile`) and the eager / compiled ratios are
printed. ``--device cuda`` times the library steps on a GPU (wall time, CUDA-synchronised; the
sequential references, the forward timer and the profiler are CPU-only).

All variants start from identical weights and see identical draws, so their losses must agree
(checked with allclose). Timing rounds interleave the variants (fair under a noisy machine); the
median is reported, as process CPU time (robust to other jobs on a shared machine; equal to the
compute time with one thread) and as wall time. A per-network forward timer and a profiler table
say where time goes.

    .venv/bin/python benchmarks/bench_distill_step.py [--steps 6] [--threads 1]
        [--device cpu|cuda] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch
import torch.nn.functional as F

from scflow.distill import DistillConfig, LatentData, draw_inputs
from scflow.ema import ema_update_
from scflow.fidelity import make_fidelity
from scflow.flow import f_theta, interpolant
from scflow.nets import build_velocity_net
from scflow.repro.presets import PRESETS
from scflow.timeskip import time_skip
from scflow.trainer import Distiller


class SequentialDistiller(Distiller):
    """Algorithm 1 evaluated term by term, without batching (the benchmark's reference)."""

    shared: bool = False

    def train_step(self) -> dict[str, float]:  # noqa: C901 - deliberately plain
        cfg, fidelity = self.cfg, self.cfg.fidelity
        it = self.step_count + 1
        x = draw_inputs(self.data, cfg, it)
        t4 = lambda s: s.reshape(-1, 1, 1, 1)  # noqa: E731
        ts = time_skip(x.t, cfg.t_skip, x.u_s, x.u_k)
        z_t = interpolant(x.z0, x.z1, x.t)
        dist = lambda a, b: (a - b).pow(2).mean() if fidelity.distance == "l2" else (  # noqa: E731
            torch.sqrt((a - b) ** 2 + fidelity.huber_c**2) - fidelity.huber_c).flatten(1).mean(1).mean()
        # L_CD
        with torch.no_grad():
            v = self.teacher_v(z_t, x.t, x.cond)
            z_s = z_t - t4(ts.d_s) * v
            y_s = f_theta(self.target, z_s, ts.t_s, x.cond)
        f_t = f_theta(self.student, z_t, x.t, x.cond)
        late = (x.t <= cfg.t_trunc) if fidelity.trunc_rule == "t" else (ts.t_s < cfg.t_trunc)
        y = torch.where(t4(late), x.z0, y_s)
        logs = {"cd": dist(f_t, y)}
        total = logs["cd"]
        x1 = None
        # L_GAN
        if cfg.lambda_gan > 0:
            x1 = f_theta(self.student, x.z1, torch.ones_like(x.t), x.cond)
            self.disc.requires_grad_(False)
            logs["gan"] = F.softplus(-self.disc(x1)).mean()
            self.disc.requires_grad_(True)
            total = total + cfg.lambda_gan * logs["gan"]
        # L_RF
        if cfg.lambda_rf > 0:
            if x1 is None:
                x1 = f_theta(self.student, x.z1, torch.ones_like(x.t), x.cond)
            x1s = x1.detach()
            z_hat = (1 - t4(x.t)) * x1s + t4(x.t) * x.z1
            logs["rf"] = (x1s - f_theta(self.student, z_hat, x.t, x.cond)).pow(2).mean()
            total = total + cfg.lambda_rf * logs["rf"]
        # L_BI
        if cfg.lambda_bi > 0:
            with torch.no_grad():
                v_bi = v if self.shared else self.teacher_v(z_t, x.t, x.cond)
                y_k = f_theta(self.target, z_t + t4(ts.d_k) * v_bi, ts.t_k, x.cond)
            f_bi = f_t if self.shared else f_theta(self.student, z_t, x.t, x.cond)
            logs["bi"] = dist(f_bi, y_k)
            total = total + cfg.lambda_bi * logs["bi"]
        logs["total"] = total.detach()
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        ema_update_(self.target, self.student, cfg.target_decay)
        ema_update_(self.eval_ema, self.student, fidelity.eval_decay)
        if cfg.lambda_gan > 0:  # D: real (with R1) and fake in separate calls
            real = x.z0.detach().requires_grad_(True)
            s_real = self.disc(real)
            (g,) = torch.autograd.grad(s_real.sum(), real, create_graph=True)
            logs["d_real"] = F.softplus(-s_real).mean()
            logs["d_fake"] = F.softplus(self.disc(x1.detach())).mean()
            logs["r1"] = g.pow(2).flatten(1).sum(1).mean()
            d_loss = logs["d_real"] + logs["d_fake"] + 0.5 * cfg.r1_gamma * logs["r1"]
            self.d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            self.d_opt.step()
        self.step_count = it
        return {k: float(v.detach()) for k, v in logs.items()}


def make(kind: str, teacher, data, cfg, device: str = "cpu", compile: str = "no") -> Distiller:
    torch.manual_seed(0)
    cls = SequentialDistiller if kind.startswith("seq") else Distiller
    d = cls(teacher, data, cfg, device=device, compile=compile)
    d.shared = kind == "seq_shared"
    return d


class ForwardTimer:
    """Wall time spent in each network's forward (hooks), per step."""

    def __init__(self, nets: dict) -> None:
        self.total: dict[str, float] = defaultdict(float)
        for name, net in nets.items():
            if net is not None:
                net.register_forward_pre_hook(lambda m, a, n=name: self._start(n))
                net.register_forward_hook(lambda m, a, o, n=name: self._stop(n))
        self._t0: dict[str, float] = {}

    def _start(self, n: str) -> None:
        self._t0[n] = time.process_time()

    def _stop(self, n: str) -> None:
        self.total[n] += time.process_time() - self._t0[n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="timed rounds (after 1 warm-up round)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--batch", type=int, default=PRESETS["mini"]["distill_batch"],
                    help="default: the mini preset's distillation batch")
    ap.add_argument("--arch", default=PRESETS["mini"]["teacher_arch"],
                    help="default: the mini preset's teacher (and student) net")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--compile", action="store_true",
                    help="also time the cd and full steps with compile='torch'")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed rounds first (default 1; 3 with --compile: tracing, recompiles)")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible to torch")
    torch.set_num_threads(args.threads)
    cpu = args.device == "cpu"
    warmup = args.warmup if args.warmup is not None else (3 if args.compile else 1)

    torch.manual_seed(0)
    teacher = build_velocity_net(args.arch, sample_size=8)
    data = LatentData(torch.randn(1024, 4, 8, 8, generator=torch.Generator().manual_seed(1)))
    fidelity = make_fidelity("code", student_lr=1e-4)
    full_cfg = DistillConfig(fidelity=fidelity, batch_size=args.batch, warmup_rf=0, warmup_bi=0)
    cd_cfg = DistillConfig(fidelity=fidelity, batch_size=args.batch, lambda_gan=0.0, lambda_rf=0.0,
                           lambda_bi=0.0, warmup_rf=0, warmup_bi=0)
    dev = args.device
    runs = {"cd": make("lib", teacher, data, cd_cfg, dev),
            "full": make("lib", teacher, data, full_cfg, dev)}
    if cpu:
        runs.update(seq=make("seq", teacher, data, full_cfg),
                    seq_shared=make("seq_shared", teacher, data, full_cfg))
    if args.compile:
        runs.update(cd_compiled=make("lib", teacher, data, cd_cfg, dev, "torch"),
                    full_compiled=make("lib", teacher, data, full_cfg, dev, "torch"))

    def sync() -> None:
        if not cpu:
            torch.cuda.synchronize()

    times: dict[str, list[float]] = defaultdict(list)
    walls: dict[str, list[float]] = defaultdict(list)
    logs: dict[str, list[dict]] = defaultdict(list)
    for r in range(args.steps + warmup):
        for name, d in runs.items():
            sync()
            t0, w0 = time.process_time(), time.perf_counter()
            logs[name].append(d.train_step())  # .tolist() of the losses: synchronises too
            sync()
            if r >= warmup:
                times[name].append(time.process_time() - t0)
                walls[name].append(time.perf_counter() - w0)

    # same math, same seeds: the losses agree step by step (compiled: up to rounding)
    pairs = [("full", "seq", 1e-4), ("full", "seq_shared", 1e-4), ("cd", "cd_compiled", 1e-3),
             ("full", "full_compiled", 1e-3)]
    for ref, name, rtol in pairs:
        if name in runs:
            for a, b in zip(logs[ref], logs[name], strict=True):
                for k in a:
                    assert abs(a[k] - b[k]) <= rtol * abs(a[k]) + 1e-6, (name, k, a[k], b[k])
    print(f"losses: every variant == the library step (allclose) over {args.steps + warmup} "
          f"steps; last full step: "
          + ", ".join(f"{k}={v:.4g}" for k, v in logs["full"][-1].items()))

    # on a GPU the process CPU time measures the launching thread, not the work: use wall time
    per = {k: statistics.median(v) for k, v in (times if cpu else walls).items()}
    what = "CPU" if cpu else "wall"
    name = torch.cuda.get_device_name() if not cpu else f"{args.threads} thread(s)"
    print(f"\n{args.arch}, batch {args.batch}, 4x8x8 latents, torch {torch.__version__}, "
          f"{dev} ({name}), median of {args.steps} steps after {warmup} warm-up "
          f"(CPU s/step | wall s/step):")
    for k, v in times.items():
        print(f"  {k:13s} {statistics.median(v):7.4f} | {statistics.median(walls[k]):7.4f}")
    print(f"ratios of {what} time:")
    if cpu:
        print(f"  full / seq        = {per['full'] / per['seq']:.2f}   (target <= 0.7)")
        print(f"  full / seq_shared = {per['full'] / per['seq_shared']:.2f}")
    print(f"  full / cd         = {per['full'] / per['cd']:.2f}   (target <= ~2.2)")
    if args.compile:
        print(f"  full_compiled / cd_compiled = {per['full_compiled'] / per['cd_compiled']:.2f}")
        print(f"  cd eager / compiled   = {per['cd'] / per['cd_compiled']:.2f}   (> 1: compile helps)")
        print(f"  full eager / compiled = {per['full'] / per['full_compiled']:.2f}")
    if not cpu:
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        return

    # where the time goes: forward time per network in one full library step and one seq step
    for name in ("full", "seq"):
        d = runs[name]
        timer = ForwardTimer({"teacher": d.teacher, "target": d.target, "student": d.student,
                              "disc": d.disc})
        t0 = time.process_time()
        d.train_step()
        wall = time.process_time() - t0
        fwd = sum(timer.total.values())
        parts = ", ".join(f"{k} fwd {v:.3f}" for k, v in timer.total.items())
        print(f"\n{name}: {wall:.3f} CPU s = {parts}, rest (backward, optimizer, EMA) "
              f"{wall - fwd:.3f}")
    with torch.profiler.profile() as prof:
        runs["full"].train_step()
    print("\nlibrary full step, top ops by self CPU time:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


if __name__ == "__main__":
    main()
