"""FLOP accounting of one distillation update and the matmul rate it is compared with.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on the step the trainer
runs (:meth:`scflow.trainer.Distiller.train_step`): matrix products, convolutions and attention,
forward and backward (the R1 double-backward included), i.e. the work a GPU's matrix units do.
Elementwise ops, norms, the optimizer and the EMA updates are not counted (the usual convention:
they are memory-bound and a small share of the FLOPs). The count depends on the nets, the batch
and the loss terms, not on the device or the dtype, so a count made on the CPU holds for a GPU
timing of the same update (scaled linearly when counted at a smaller batch: every counted op is
per example).

The achieved rate is compared with a dense matrix product measured on the same device, in the
same dtype and the same process (:func:`matmul_peak`), so the ratio holds on any machine rather
than against a datasheet's number.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["UpdateCost", "count_flops", "flops_by_op", "matmul_peak", "peak_memory_gib",
           "time_per_call", "update_flops"]


def flops_by_op(fn: Callable[[], object]) -> dict[str, int]:
    """FLOPs of each counted op (``aten.convolution``, ``aten.mm``, ...) in one call of ``fn``."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return {str(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}


def count_flops(fn: Callable[[], object]) -> int:
    """Total FLOPs of one call of ``fn`` (a multiply-add counts 2)."""
    return sum(flops_by_op(fn).values())


def update_flops(distiller: object) -> int:
    """FLOPs of one ``distiller.train_step()`` -- which it runs: the distiller advances one update.

    Count an eager distiller (``compile="no"``): a compiled call hides its ops from the counter.
    """
    if getattr(distiller, "compile", "no") != "no":
        raise ValueError("update_flops needs an eager Distiller (compile='no'): compiled calls "
                         "are not seen by FlopCounterMode; the compiled update does the same FLOPs")
    return count_flops(distiller.train_step)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_per_call(fn: Callable[[], object], device: torch.device | str, calls: int = 5,
                  blocks: int = 3, warmup: int = 1) -> float:
    """Seconds per call of ``fn``: the median over ``blocks`` of ``calls`` back-to-back calls.

    The device is synchronised around each block only, so work queued asynchronously inside a
    call (a GPU update without host synchronisation) is timed as it runs in training. On the
    CPU the clock is the process's CPU time (with one thread: the compute time, robust to other
    jobs on a shared machine); on a GPU, wall time.
    """
    device = torch.device(device)
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    for _ in range(warmup):
        fn()
    per: list[float] = []
    for _ in range(blocks):
        _sync(device)
        t0 = clock()
        for _ in range(calls):
            fn()
        _sync(device)
        per.append((clock() - t0) / calls)
    return statistics.median(per)


def matmul_peak(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                n: int | None = None, repeats: int = 5) -> float:
    """FLOP/s of a dense ``n x n @ n x n`` product (``2 n^3`` FLOPs) on ``device`` in ``dtype``.

    The fastest of ``repeats`` timed products after one warm-up (a peak: other jobs only slow a
    product down). Default ``n``: 8192 on a GPU (fills an H100), 1024 on the CPU. Random
    operands: zeros run faster on some GPUs than real data.
    """
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 1024)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    best = time_per_call(lambda: torch.mm(a, b), device, calls=1, blocks=1, warmup=1)
    for _ in range(repeats - 1):
        best = min(best, time_per_call(lambda: torch.mm(a, b), device, calls=1, blocks=1,
                                       warmup=0))
    return 2 * n**3 / best


def peak_memory_gib(device: torch.device | str) -> float:
    """Peak memory so far: CUDA's allocated peak (reset it per measurement) or, on the CPU,
    the process's maximum resident set (cumulative over the process's life)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


@dataclass(frozen=True)
class UpdateCost:
    """One update's FLOPs and time against the measured matmul rate."""

    flops: float  # per update (already scaled to the reported batch)
    seconds: float  # per update
    peak_flop_s: float  # measured matmul rate, same device and dtype
    peak_mem_gib: float = float("nan")

    @property
    def flop_s(self) -> float:
        """Achieved FLOP/s."""
        return self.flops / self.seconds

    @property
    def pct_of_peak(self) -> float:
        """Achieved rate in % of the measured matmul rate."""
        return 100.0 * self.flop_s / self.peak_flop_s

    def row(self) -> dict[str, float]:
        """The columns of the benchmark tables (GFLOP, ms, GFLOP/s, %, GiB)."""
        return {"gflop_per_update": self.flops / 1e9, "ms_per_update": 1e3 * self.seconds,
                "gflop_per_s": self.flop_s / 1e9, "pct_of_peak": self.pct_of_peak,
                "peak_mem_gib": self.peak_mem_gib}
