"""Table 3's rectified-flow baseline: InstaFlow's three stages on top of the teacher.

docs/METHOD.md §4 (the authors released no code for it; this is written from the recipe):

1. **pairs** - draw noise ``z1`` and integrate the teacher's ODE with many Euler steps to get
   ``z0_hat`` (paper: 500 steps, 50k pairs): :func:`generate_pairs`;
2. **reflow** ("LFM + Rectified") - flow matching (Eq. 1) on the straight lines between the
   paired points, ``z_t = (1 - t) z0_hat + t z1``, starting from the teacher's weights
   (paper: 50 epochs): :func:`reflow_loss`;
3. **distil** ("LFM + Rectified + Distill") - regress the one-step output ``f(z1, 1)`` (Eq. 5)
   of the reflowed net onto ``z0_hat`` with squared L2 (paper: 10 epochs): :func:`distill_loss`.

Each stage is cached by its configuration (:mod:`scflow.cache`), like the teacher: the pairs
depend on the teacher, the reflowed net on the pairs, the distilled net on the reflowed net.
The settings of the three stages are a :class:`BaselineConfig`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from scflow.cache import cached
from scflow.checks import integer, number
from scflow.compile import compile_net
from scflow.flow import VelocityFn, f_theta, flow_matching_loss
from scflow.nets import VelocityNet
from scflow.samplers import sample_batched

PAIR_SEED_OFFSET = 20_000
"""Pairs use their own noise, never the evaluation bank's (:func:`scflow.evaluate.bank_noise`, seeds from 10_000)."""

PairLoss = Callable[..., Tensor]  # (net, z0_hat, z1, t, cond=None) -> loss


@dataclass(frozen=True)
class BaselineConfig:
    """The three stages' settings (paper: 50k pairs of 500 Euler steps; 50 and 10 epochs at
    batch 32, learning rate 1e-5); validated on construction."""

    pairs: int = 2000  # stage 1: (noise, teacher sample) pairs
    euler_steps: int = 50  # stage 1: teacher Euler steps per pair
    reflow_steps: int = 417  # stage 2 updates
    distill_steps: int = 83  # stage 3 updates
    batch_size: int = 32  # stages 2 and 3
    lr: float = 2e-5  # AdamW, stages 2 and 3
    seed: int = 0  # pair noise and training batches

    def __post_init__(self) -> None:
        for name, value in (("rectified_pairs", self.pairs),
                            ("rectified_euler_steps", self.euler_steps),
                            ("rectified_reflow_steps", self.reflow_steps),
                            ("rectified_distill_steps", self.distill_steps),
                            ("rectified_batch", self.batch_size)):
            integer(name, value, ge=1)
        number("rectified_lr", self.lr, gt=0.0)
        integer("seed", self.seed, ge=0)


def generate_pairs(teacher: VelocityFn, n: int, shape: tuple[int, ...], euler_steps: int,
                   seed: int, batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """Stage 1: ``n`` couplings ``(z1, z0_hat)`` of the teacher's ODE by ``euler_steps`` Euler steps.

    The noise comes from its own generator (``seed + PAIR_SEED_OFFSET``), so the same arguments
    give the same pairs. Returns ``(z1, z0_hat)``, both (n, *shape), on the CPU.
    """
    g = torch.Generator().manual_seed(PAIR_SEED_OFFSET + seed)
    z1 = torch.randn((n, *shape), generator=g)
    dev = next(iter(teacher.parameters())).device if isinstance(teacher, nn.Module) else "cpu"
    z0_hat = sample_batched(teacher, z1.to(dev), euler_steps, batch_size=batch_size)
    return z1, z0_hat.float().cpu()


def reflow_loss(net: nn.Module, z0_hat: Tensor, z1: Tensor, t: Tensor,
                cond: Tensor | None = None) -> Tensor:
    """Stage 2 (reflow): Eq. 1 with the teacher's coupling instead of independent noise and data.

    ``|| (z1 - z0_hat) - v(z_t, t) ||^2`` on ``z_t = (1 - t) z0_hat + t z1``: the straight line
    between the paired points is the target path, so a perfect fit is a one-step generator.
    """
    return flow_matching_loss(net, z0_hat, z1, t, cond)


def distill_loss(net: nn.Module, z0_hat: Tensor, z1: Tensor, t: Tensor | None = None,
                 cond: Tensor | None = None) -> Tensor:
    """Stage 3 (distil): ``|| f(z1, 1) - z0_hat ||^2`` with ``f(z, t) = z - t v(z, t)`` (Eq. 5).

    ``t`` is ignored (the one-step output is always taken at t = 1); it is accepted so both
    stages share :data:`PairLoss`'s signature.
    """
    ones = torch.ones(z1.shape[0], dtype=z1.dtype, device=z1.device)
    return (f_theta(net, z1, ones, cond) - z0_hat).pow(2).mean()


def train_on_pairs(init: nn.Module, z1: Tensor, z0_hat: Tensor, loss_fn: PairLoss, *,
                   steps: int, batch_size: int, lr: float, seed: int, device: str = "cpu",
                   cond: Tensor | None = None, desc: str = "", progress: bool = False
                   ) -> tuple[nn.Module, list[float]]:
    """Fine-tune a copy of ``init`` on the pairs with ``loss_fn`` (stage 2 or 3); AdamW, wd 0.

    ``cond`` (one row per pair, e.g. caption embeddings) is passed to the net when given.
    Batches and times are drawn from a generator seeded by ``seed``: deterministic on the CPU.
    Returns the trained net (eval mode, frozen) and the loss of every update.
    """
    from scflow.progress import progress as progress_bar

    net = copy.deepcopy(init).to(device).train().requires_grad_(True)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    for _ in progress_bar(steps, desc=desc, disable=not progress):
        idx = torch.randint(0, z1.shape[0], (batch_size,), generator=g)
        t = torch.rand(batch_size, generator=g)
        c = None if cond is None else cond[idx].to(device)
        loss = loss_fn(net, z0_hat[idx].to(device), z1[idx].to(device), t.to(device), c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net.eval().requires_grad_(False), losses


def pairs_cache_config(cfg: BaselineConfig, teacher_key: dict[str, Any]) -> dict[str, Any]:
    """Stage 1 depends on the teacher (its cache key) and on the pair count, Euler steps and seed."""
    return {"kind": "rectified_pairs", "teacher": teacher_key, "n": cfg.pairs,
            "euler_steps": cfg.euler_steps, "seed": cfg.seed}


def stage_cache_config(cfg: BaselineConfig, teacher_key: dict[str, Any],
                       stage: str) -> dict[str, Any]:
    """Stage 2 (``"reflow"``) or 3 (``"distill"``): the previous stage plus its own settings."""
    if stage == "reflow":
        prev, steps = pairs_cache_config(cfg, teacher_key), cfg.reflow_steps
    elif stage == "distill":
        prev, steps = stage_cache_config(cfg, teacher_key, "reflow"), cfg.distill_steps
    else:
        raise ValueError(f"unknown stage {stage!r}; valid: 'reflow', 'distill'")
    return {"kind": f"rectified_{stage}", "previous": prev, "steps": steps,
            "batch": cfg.batch_size, "lr": cfg.lr, "loss": "l2"}


def get_rectified_flow(cfg: BaselineConfig, teacher: VelocityNet, teacher_key: dict[str, Any],
                       latent_shape: tuple[int, ...], device: str = "cpu", compile: str = "no",
                       progress: bool = False) -> dict[str, Any]:
    """All three stages of ``cfg`` from ``teacher``, each trained only on a cache miss.

    ``teacher_key`` is the teacher's cache key (:func:`scflow.teacher.teacher_cache_config`);
    ``compile`` applies to stage 1's Euler sampling of the teacher (speed only). Returns a dict
    with ``pairs`` ``(z1, z0_hat)``, the nets ``rectified`` (stage 2) and ``rectified+distill``
    (stage 3), their loss curves ``loss_reflow`` / ``loss_distill`` and ``hits`` (which stages
    came from the cache).
    """
    def build_pairs(d: Path) -> None:
        z1, z0_hat = generate_pairs(compile_net(teacher, compile), cfg.pairs, latent_shape,
                                    cfg.euler_steps, cfg.seed)
        torch.save({"z1": z1, "z0_hat": z0_hat}, d / "pairs.pt")

    pdir, pairs_hit = cached("rectified_pairs", pairs_cache_config(cfg, teacher_key), build_pairs)
    pairs = torch.load(pdir / "pairs.pt")
    z1, z0_hat = pairs["z1"], pairs["z0_hat"]

    def stage(name: str, init: VelocityNet, loss_fn: PairLoss, steps: int) -> tuple[Path, bool]:
        def build(d: Path) -> None:
            net, losses = train_on_pairs(
                init, z1, z0_hat, loss_fn, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr,
                seed=cfg.seed, device=device, desc=name, progress=progress)
            net.cpu().save(d / "net")
            torch.save(torch.tensor(losses), d / "losses.pt")
        return cached(f"rectified_{name}", stage_cache_config(cfg, teacher_key, name), build)

    def load(d: Path) -> VelocityNet:
        return VelocityNet.load(d / "net").to(device).eval().requires_grad_(False)

    rdir, reflow_hit = stage("reflow", teacher, reflow_loss, cfg.reflow_steps)
    reflowed = load(rdir)
    ddir, distill_hit = stage("distill", reflowed, distill_loss, cfg.distill_steps)
    return {"pairs": (z1, z0_hat), "rectified": reflowed, "rectified+distill": load(ddir),
            "loss_reflow": torch.load(rdir / "losses.pt"),
            "loss_distill": torch.load(ddir / "losses.pt"),
            "hits": {"pairs": pairs_hit, "reflow": reflow_hit, "distill": distill_hit}}
