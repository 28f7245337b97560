"""The library's batched SCFlow step against a sequential reading of Algorithm 1 (CPU only).

Used by ``bench_distill_step.py`` (its ``--seq`` part). Variants, all from identical weights
and draws, so that their losses must agree (checked with allclose):

- ``cd``: the library step with CD only (lambda_GAN = lambda_RF = lambda_BI = 0);
- ``full``: the library step with every term on (warm-ups 0) plus the discriminator update;
- ``seq``: the same math written here the straightforward way, one network call per term in
  Algorithm 1's reading order (L_CD: teacher, target, student; L_GAN: student on z1, D;
  L_RF: student on z_hat; L_BI: teacher again, target on z_k, student on z_t again; then the
  discriminator with separate real/fake calls);
- ``seq_shared``: sequential again, but sharing what the math shares (one teacher call, the
  student's f(z_t, t) reused by L_BI) -- isolates the gain of batching calls together.

Timing rounds interleave the variants (fair under a noisy machine); the median is reported, as
process CPU time (robust to other jobs on a shared machine; equal to the compute time with one
thread) and as wall time. A per-network forward timer and a profiler table say where time goes.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict

import torch
import torch.nn.functional as F

from scflow.distill import DistillConfig, LatentData, draw_inputs
from scflow.ema import ema_update_
from scflow.flow import f_theta, interpolant
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


def make(kind: str, teacher, data: LatentData, cfg: DistillConfig) -> Distiller:
    torch.manual_seed(0)
    cls = SequentialDistiller if kind.startswith("seq") else Distiller
    d = cls(teacher, data, cfg, device="cpu")
    d.shared = kind == "seq_shared"
    return d


def compare_sequential(teacher, data: LatentData, full_cfg: DistillConfig,
                       cd_cfg: DistillConfig, steps: int, warmup: int, label: str) -> None:
    """Time cd, full, seq and seq_shared interleaved; print the table, ratios and breakdowns."""
    runs = {"cd": make("lib", teacher, data, cd_cfg), "full": make("lib", teacher, data, full_cfg),
            "seq": make("seq", teacher, data, full_cfg),
            "seq_shared": make("seq_shared", teacher, data, full_cfg)}
    times: dict[str, list[float]] = defaultdict(list)
    walls: dict[str, list[float]] = defaultdict(list)
    logs: dict[str, list[dict]] = defaultdict(list)
    for r in range(steps + warmup):
        for name, d in runs.items():
            t0, w0 = time.process_time(), time.perf_counter()
            logs[name].append(d.train_step())
            if r >= warmup:
                times[name].append(time.process_time() - t0)
                walls[name].append(time.perf_counter() - w0)
    for name in ("seq", "seq_shared"):  # same math, same seeds: the losses agree step by step
        for a, b in zip(logs["full"], logs[name], strict=True):
            for k in a:
                assert abs(a[k] - b[k]) <= 1e-4 * abs(a[k]) + 1e-6, (name, k, a[k], b[k])
    print(f"losses: seq and seq_shared == the library step (allclose) over {steps + warmup} "
          "steps; last full step: "
          + ", ".join(f"{k}={v:.4g}" for k, v in logs["full"][-1].items()))
    per = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{label}, median of {steps} steps after {warmup} warm-up (CPU s/step | wall s/step):")
    for k, v in times.items():
        print(f"  {k:13s} {statistics.median(v):7.4f} | {statistics.median(walls[k]):7.4f}")
    print("ratios of CPU time:")
    print(f"  full / seq        = {per['full'] / per['seq']:.2f}   (target <= 0.7)")
    print(f"  full / seq_shared = {per['full'] / per['seq_shared']:.2f}")
    print(f"  full / cd         = {per['full'] / per['cd']:.2f}   (target <= ~2.2)")
    for name in ("full", "seq"):  # forward time per network in one full library step and one seq
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
