"""Launched by tests/test_ddp.py under ``torchrun --nproc_per_node 2`` (gloo, CPU).

Trains the same tiny distillation twice (GAN on, GAN off) and writes, per rank, the averaged
gradients and losses of the first update and the final student weights to
``<out>/<tag>_rank<r>.pt``. :func:`make_distiller` is also imported by the test to
run the single-process reference on the same global batch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from scflow.distill import DistillConfig, LatentData
from scflow.fidelity import make_fidelity
from scflow.nets import build_velocity_net
from scflow.trainer import Distiller

STEPS = 3


def make_distiller(gan: bool) -> Distiller:
    torch.manual_seed(0)
    teacher = build_velocity_net("unet_tiny", sample_size=8)
    data = LatentData(torch.randn(32, 4, 8, 8, generator=torch.Generator().manual_seed(1)))
    fidelity = make_fidelity("code", student_lr=1e-3, disc_lr=1e-3)
    cfg = DistillConfig(fidelity=fidelity, batch_size=8, disc_width=8, warmup_rf=0, warmup_bi=0,
                        lambda_gan=0.1 if gan else 0.0)
    return Distiller(teacher, data, cfg, device="cpu")


def main(out: Path) -> None:
    torch.set_num_threads(1)
    for tag, gan in (("gan", True), ("nogan", False)):
        d = make_distiller(gan)
        assert d.accelerator.num_processes == 2, "expected two processes"
        result = run(d)
        torch.save(result, out / f"{tag}_rank{d.accelerator.process_index}.pt")


def run(d: Distiller) -> dict:
    """First update (keep its gradients and losses), then the rest; return what is compared."""
    logs1 = d.train_step()
    grads1 = {n: p.grad.clone() for n, p in d.student.named_parameters()}
    d.train(STEPS - 1)
    return {"logs1": logs1, "grads1": grads1, "student": d.student.state_dict()}


if __name__ == "__main__":
    main(Path(sys.argv[1]))
