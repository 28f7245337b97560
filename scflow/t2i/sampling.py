"""Rendering prompts: per-prompt noise, sharded sampling over processes, and timing.

- :func:`index_noise`: the noise of prompt ``i`` depends only on ``(seed, i)``, so a sample is
  the same whatever the number of processes or the batch it falls in -- and no call ever
  draws the whole 30k-sample noise tensor (a bug of the authors' evaluation script).
- :func:`render_prompts`: every process renders ITS OWN contiguous share of the prompts
  (accelerate's ``split_between_processes``, no padding), so each prompt is rendered exactly
  once; the authors' code rendered the same prompts on every GPU.
- :func:`seconds_per_image`: Table 2's "time" column, one harness for every method and NFE:
  warm-up calls first, device synchronisation around the timed loop, with or without the VAE
  decode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from scflow.flow import VelocityFn
from scflow.samplers import euler_sample

Encoder = Callable[[Sequence[str]], Tensor]
"""Captions -> embeddings (B, L, D), e.g. a :class:`scflow.text.TextEncoder`."""


def index_noise(indices: Sequence[int], shape: Sequence[int], seed: int) -> Tensor:
    """Noise (len(indices), *shape): row k is drawn from a generator seeded by ``(seed, indices[k])``."""
    rows = [torch.randn(tuple(shape), generator=torch.Generator().manual_seed(
        seed * 1_000_003 + 7919 + int(i))) for i in indices]
    if not rows:
        return torch.zeros((0, *shape))
    return torch.stack(rows)


def shard_indices(n: int, state: object | None = None) -> list[int]:
    """This process's contiguous share of ``range(n)`` (uneven shares, no padding, no repeats)."""
    from accelerate import PartialState

    state = state or PartialState()
    with state.split_between_processes(list(range(n)), apply_padding=False) as mine:
        return list(mine)


@torch.no_grad()
def render_prompts(net: VelocityFn, prompts: Sequence[str], text: Encoder,
                   shape: Sequence[int], nfe: int, *, seed: int, batch_size: int = 64,
                   decode: Callable[[Tensor], Tensor] | None = None,
                   device: str | torch.device = "cpu", gather: bool = True,
                   state: object | None = None) -> tuple[list[int], Tensor]:
    """Euler-sample one image per prompt, sharded over the processes of ``state``.

    Args:
        net: velocity function (wrap a teacher with :func:`scflow.flow.guided` for CFG).
        prompts: the captions; prompt ``i`` uses noise :func:`index_noise` ``([i])``.
        text: captions -> embeddings.
        shape: latent shape (C, H, W).
        decode: latents -> images (e.g. the VAE decode); None keeps latents.
        gather: return every process's results (ordered by prompt index) to every process;
            False returns only this process's ``(indices, outputs)`` -- at real scale each
            process then writes its own files.

    Returns:
        ``(indices, outputs)``: the prompt indices rendered and one output row per index.
    """
    if len(prompts) == 0:
        raise ValueError("no prompts to render (empty prompt list)")
    from accelerate import PartialState

    state = state or PartialState()
    mine = shard_indices(len(prompts), state)
    outs = []
    for k in range(0, len(mine), batch_size):
        chunk = mine[k:k + batch_size]
        z1 = index_noise(chunk, shape, seed).to(device)
        cond = text([prompts[i] for i in chunk]).to(device)
        x = euler_sample(net, z1, nfe, cond)
        outs.append((decode(x) if decode is not None else x).float().cpu())
    local = torch.cat(outs) if outs else torch.zeros(0)
    if not gather or state.num_processes == 1:
        return mine, local
    from accelerate.utils import gather_object

    parts = gather_object([(mine, local)])
    indices = [i for idx, _ in parts for i in idx]
    order = sorted(range(len(indices)), key=indices.__getitem__)
    full = torch.cat([x for idx, x in parts if len(idx)])
    return [indices[j] for j in order], full[order]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@torch.no_grad()
def seconds_per_image(net: VelocityFn, z1: Tensor, cond: Tensor | None, nfe: int, *,
                      decode: Callable[[Tensor], Tensor] | None = None, warmup: int = 1,
                      repeats: int = 3) -> float:
    """Wall-clock seconds per image of Euler sampling at ``nfe`` (+ decode), batch ``len(z1)``.

    ``warmup`` untimed calls (kernel selection, caches), then ``repeats`` timed calls between
    two device synchronisations; returns total time / (repeats * batch). Text encoding is NOT
    timed (the embeddings are given), as in the paper's per-image times.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0 (got {repeats}, {warmup})")

    def once() -> Tensor:
        x = euler_sample(net, z1, nfe, cond)
        return decode(x) if decode is not None else x

    for _ in range(warmup):
        once()
    _sync(z1.device)
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    _sync(z1.device)
    return (time.perf_counter() - start) / (repeats * z1.shape[0])
