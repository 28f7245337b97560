"""Opt-in compilation of the velocity nets (the ``compile`` parameter): a speed switch only.

On a GPU a small net such as ``unet_small`` is kernel-launch bound (tens of small kernels per
call, the GPU idle in between); ``torch.compile`` fuses them. The math is unchanged: losses and
samples agree with eager execution up to floating-point rounding, so ``compile`` never enters
a cache key of trained weights (a student trained eagerly is reused by a compiled run and vice
versa). The module itself stays the object that is trained, EMA-updated and saved; only its
calls go through the compiled wrapper, which shares its parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

COMPILE_CHOICES = ("no", "torch")

__all__ = ["COMPILE_CHOICES", "compile_net", "torch_compile_usable"]


def compile_net(net: nn.Module, mode: str = "no", torch_mode: str = "default"
                ) -> Callable[..., Any]:
    """``net`` itself (``"no"``) or ``torch.compile(net)`` (``"torch"``), sharing its parameters.

    ``torch_mode`` is ``torch.compile``'s ``mode`` (``"max-autotune"``, ``"reduce-overhead"``:
    CUDA graphs; :data:`scflow.speed.COMPILE_MODES`); it needs ``mode="torch"``. The first calls
    of a compiled net per input shape are slow (tracing and code generation); a new batch size
    recompiles once, then runs from the cache.
    """
    if mode not in COMPILE_CHOICES:
        raise ValueError(f"compile must be one of {COMPILE_CHOICES} (got {mode!r})")
    if mode == "no":
        if torch_mode != "default":
            raise ValueError(f"a torch.compile mode ({torch_mode!r}) needs compile='torch'")
        return net
    import torch

    return torch.compile(net) if torch_mode == "default" else torch.compile(net, mode=torch_mode)


def torch_compile_usable() -> tuple[bool, str]:
    """Whether ``torch.compile`` runs on this machine (a tiny function), and why not if not.

    Inductor needs a working C++ compiler on the CPU (and Triton on a GPU); tests and
    benchmarks skip the compiled variant with this reason instead of failing on a machine
    without them.
    """
    import torch

    try:
        fn = torch.compile(lambda x: (x * 2).sin() + 1)
        x = torch.arange(4.0)
        ok = torch.allclose(fn(x), (x * 2).sin() + 1)
        return ok, "" if ok else "torch.compile gave a different value"
    except Exception as err:  # noqa: BLE001 (any backend failure means: not usable here)
        return False, f"torch.compile is unusable here: {type(err).__name__}: {err}"[:300]
