"""The declaration of one notebook parameter: its type, allowed values and neutral value.

:data:`scflow.repro.presets.PARAMS` declares every parameter with :class:`Param`; resolving a
notebook's values against those declarations is :mod:`scflow.repro.params`.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from typing import Any

NO_NEUTRAL = object()  # sentinel: the parameter has no neutral value (always hashed)


class ParameterError(ValueError):
    """An unknown, mistyped or out-of-range parameter (raised before any compute)."""


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (an error message never holds a huge value)."""
    r = reprlib.Repr()
    r.maxstring = r.maxother = r.maxlong = limit
    r.maxlist = r.maxtuple = r.maxdict = 8
    text = r.repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class Param:
    """Declaration of one parameter: its type, its allowed values and one line of help."""

    type: type
    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    item_type: type | None = None  # for list parameters
    min_len: int = 0  # for list parameters: at least this many items
    multiple_of: int | None = None  # ints (or list items) divisible by this
    # The parameter's value when it was introduced (behaviour unchanged at that value). Left out
    # of the configuration hash when set to it, so results computed before the parameter was
    # added keep their hash (and are not rerun); any other value enters the hash as usual.
    neutral: Any = NO_NEUTRAL

    def describe(self) -> str:
        """Human-readable allowed values, used in error messages."""
        parts = [self.type.__name__ if self.item_type is None else f"list[{self.item_type.__name__}]"]
        for op, v in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(self, op)
            if bound is not None:
                parts.append(f"{v} {bound}")
        if self.choices is not None:
            parts.append("one of " + ", ".join(map(repr, self.choices)))
        if self.multiple_of is not None:
            parts.append(f"multiple of {self.multiple_of}")
        if self.min_len:
            parts.append(f"with at least {self.min_len} item{'s' * (self.min_len > 1)}")
        return " ".join(parts)

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` (ints accepted for floats) or raise :class:`ParameterError`."""
        bad = ParameterError(f"parameter {name!r}: got {short_repr(value)}, expected "
                             f"{self.describe()} ({self.help}){self._hint(name, value)}")
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type is list:
            if not isinstance(value, (list, tuple)) or len(value) < self.min_len:
                raise bad
            if self.item_type is not None:
                value = [self._scalar(name, v, self.item_type, bad) for v in value]
                for v in value:
                    self._range(v, bad)
            return list(value)
        value = self._scalar(name, value, self.type, bad)
        self._range(value, bad)
        return value

    def _hint(self, name: str, value: Any) -> str:
        """Why a value papermill passed as text is not a list."""
        if self.type is list and isinstance(value, str):
            return (f"; papermill's -p passes text: give a list with -y, e.g. "
                    f"-y {name} '[1, 2]'")
        return ""

    @staticmethod
    def _scalar(name: str, value: Any, typ: type, bad: Exception) -> Any:
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # bool is a subclass of int: never let True pass as 1
        if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
            raise bad
        if typ is float and not math.isfinite(value):
            raise bad
        return value

    def _range(self, v: Any, bad: Exception) -> None:
        if self.choices is not None and v not in self.choices:
            raise bad
        if self.multiple_of is not None and isinstance(v, int) and v % self.multiple_of:
            raise bad
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if (self.ge is not None and not v >= self.ge) or (self.gt is not None and not v > self.gt) \
                    or (self.le is not None and not v <= self.le) or (self.lt is not None and not v < self.lt):
                raise bad
