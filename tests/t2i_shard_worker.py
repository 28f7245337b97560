"""Launched by tests/test_t2i.py under ``torchrun --nproc_per_node 2`` (gloo, CPU).

Every rank renders its share of the same prompt list with :func:`scflow.t2i.sampling.render_prompts`
and writes the indices it rendered, its outputs and the gathered result to
``<out>/rank<r>.pt``. :func:`setup` is also imported by the test for the one-process reference.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from accelerate import PartialState

from scflow.t2i.sampling import render_prompts

N_PROMPTS, SHAPE, NFE, SEED = 7, (4, 8, 8), 2, 3  # 7: uneven shares on purpose


def setup():
    """A deterministic velocity field and a text encoder stub (caption -> embedding)."""
    def net(z, t, cond):
        return 0.5 * z + cond.mean(dim=(1, 2)).reshape(-1, 1, 1, 1) * t.reshape(-1, 1, 1, 1)

    def text(captions):
        return torch.stack([torch.full((3, 5), float(len(c))) for c in captions])

    prompts = [f"prompt number {'x' * i}" for i in range(N_PROMPTS)]
    return net, text, prompts


def main(out: Path) -> None:
    torch.set_num_threads(1)
    state = PartialState(cpu=True)
    assert state.num_processes == 2, "expected two processes"
    net, text, prompts = setup()
    mine, local = render_prompts(net, prompts, text, SHAPE, NFE, seed=SEED, batch_size=2,
                                 gather=False, state=state)
    idx, full = render_prompts(net, prompts, text, SHAPE, NFE, seed=SEED, batch_size=2,
                               state=state)
    torch.save({"mine": mine, "local": local, "idx": idx, "full": full},
               out / f"rank{state.process_index}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
