"""Validation of typed configs: one clear ``ValueError`` naming the field and what it must be.

The configs of the library (:class:`scflow.data.DataConfig`, ...,
:class:`scflow.distill.DistillConfig`) call these in ``__post_init__``, so a bad value is refused
when the config is built, before any data is read or any network is trained.
"""

from __future__ import annotations

import math
from typing import Any


def choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """``value`` must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices} (got {value!r})")


def number(name: str, value: Any, *, ge: float | None = None, gt: float | None = None,
           le: float | None = None, lt: float | None = None) -> None:
    """``value`` must be a finite int or float (not a bool) within the given bounds."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (ge is None or value >= ge) and (gt is None or value > gt)
    ok = ok and (le is None or value <= le) and (lt is None or value < lt)
    if not ok:
        bounds = ", ".join(f"{op} {b}" for op, b in ((">=", ge), (">", gt), ("<=", le), ("<", lt))
                           if b is not None)
        raise ValueError(f"{name} must be a finite number {bounds} (got {value!r})")


def integer(name: str, value: Any, *, ge: int) -> None:
    """``value`` must be an int (not a bool) ``>= ge``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < ge:
        raise ValueError(f"{name} must be an integer >= {ge} (got {value!r})")


def text(name: str, value: Any) -> None:
    """``value`` must be a string (a path or a name; may be empty)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string (got {value!r})")


def flag(name: str, value: Any) -> None:
    """``value`` must be a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False (got {value!r})")
